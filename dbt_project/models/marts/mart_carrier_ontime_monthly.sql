{{ config(tags=['aggregate']) }}

with

flights as (

    select * from {{ ref('fct_flights') }}

),

carriers as (

    select * from {{ ref('dim_carriers') }}

),

monthly as (

    select
        carrier,
        year,
        month,
        -- explicit bigint: DuckDB sums integers into HUGEINT, which its Parquet writer turns into double
        cast(count(*) as {{ dbt.type_bigint() }}) as flights,
        cast(sum(case when is_cancelled then 1 else 0 end) as {{ dbt.type_bigint() }}) as cancelled,
        cast(count(arr_delay) as {{ dbt.type_bigint() }}) as arrived,
        cast(coalesce(sum(arrived_late), 0) as {{ dbt.type_bigint() }}) as arrived_late,
        avg(arr_delay) as mean_arr_delay,
        avg(dep_delay) as mean_dep_delay

    from flights
    group by carrier, year, month

),

final as (

    select
        monthly.carrier,
        carriers.carrier_name,
        monthly.year,
        monthly.month,
        monthly.flights,
        monthly.cancelled,
        monthly.arrived,
        monthly.arrived_late,
        -- double precision on both engines: Redshift divides bigints as integers
        1 - cast(monthly.arrived_late as double precision)
            / nullif(monthly.arrived, 0) as on_time_rate,
        monthly.mean_arr_delay,
        monthly.mean_dep_delay

    from monthly
    left join carriers
        on monthly.carrier = carriers.carrier

)

select * from final
