-- The dimensions its relationship tests read: built before this model, so the tests run in the same
-- dbt call (indirect selection `buildable`), and a daily run never races a dimension's first build.
-- depends_on: {{ ref('dim_airports') }}

with

routes as (

    select * from {{ ref('stg_lake__route_performance_daily') }}
    -- the run's days (Dagster's partition range); every day when dbt runs without the range
    where {{ in_lake_days('flight_date') }}

),

final as (

    select
        flight_date,
        origin,
        dest,
        {{ dbt.concat(["origin", "'-'", "dest"]) }} as route,
        flights,
        cancelled,
        arrived,
        arrived_late,
        on_time_rate,
        mean_dep_delay,
        mean_arr_delay

    from routes

)

select * from final
