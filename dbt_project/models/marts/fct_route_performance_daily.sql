with

routes as (

    select * from {{ ref('stg_lake__route_performance_daily') }}

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
