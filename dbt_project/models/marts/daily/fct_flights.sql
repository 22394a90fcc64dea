-- The dimensions its relationship tests read: built before this model, so the tests run in the same
-- dbt call (indirect selection `buildable`), and a daily run never races a dimension's first build.
-- depends_on: {{ ref('dim_carriers') }}
-- depends_on: {{ ref('dim_airports') }}

with

flights as (

    select * from {{ ref('stg_lake__flights') }}
    -- the run's days (Dagster's partition range); every day when dbt runs without the range
    where {{ in_lake_days('flight_date') }}

),

final as (

    select
        flight_id,
        flight_date,
        time_hour,
        year,
        month,
        day,
        carrier,
        flight_number,
        tailnum,
        origin,
        dest,
        sched_dep_time,
        dep_time,
        sched_arr_time,
        arr_time,
        is_cancelled,
        dep_delay,
        arr_delay,
        -- same rule as curated.flight_features: late means more than 15 minutes, unknown when the
        -- flight has no arrival delay (cancelled or diverted)
        case
            when arr_delay > 15 then 1
            when arr_delay is not null then 0
        end as arrived_late,
        air_time,
        distance

    from flights

)

select * from final
