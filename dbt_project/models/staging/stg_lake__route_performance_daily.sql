with

source as (

    select * from {{ source('lake_curated', 'route_performance_daily') }}

),

renamed as (

    select
        flight_date,
        origin,
        dest,
        flights,
        cancelled,
        arrived,
        arrived_late,
        on_time_rate,
        mean_dep_delay,
        mean_arr_delay

    from source

)

select * from renamed
