{#-
    Every flight lands in exactly one carrier-month: the mart's totals equal the fact table's.
    Returns a row (a failure) for each measure that differs. The test reads two models, so
    `meta.dagster.ref` tells dagster-dbt which asset it checks.
-#}
{{ config(meta={'dagster': {'ref': {'name': 'mart_carrier_ontime_monthly'}}}) }}

with

mart as (

    select
        sum(flights) as flights,
        sum(cancelled) as cancelled,
        sum(arrived) as arrived,
        sum(arrived_late) as arrived_late

    from {{ ref('mart_carrier_ontime_monthly') }}

),

facts as (

    select
        count(*) as flights,
        sum(case when is_cancelled then 1 else 0 end) as cancelled,
        count(arr_delay) as arrived,
        coalesce(sum(arrived_late), 0) as arrived_late

    from {{ ref('fct_flights') }}

),

compared as (

    select 'flights' as measure, mart.flights as mart_total, facts.flights as fct_total
    from mart cross join facts
    union all
    select 'cancelled', mart.cancelled, facts.cancelled
    from mart cross join facts
    union all
    select 'arrived', mart.arrived, facts.arrived
    from mart cross join facts
    union all
    select 'arrived_late', mart.arrived_late, facts.arrived_late
    from mart cross join facts

),

final as (

    select * from compared
    where coalesce(mart_total, 0) != coalesce(fct_total, 0)

)

select * from final
