with

source as (

    select * from {{ source('lake_clean', 'flights') }}

),

renamed as (

    select
        flight_id,
        flight_date,
        time_hour,
        year,
        month,
        day,
        carrier,
        flight as flight_number,
        tailnum,
        origin,
        dest,
        sched_dep_time,
        dep_time,
        dep_delay,
        sched_arr_time,
        arr_time,
        arr_delay,
        air_time,
        distance,
        hour as sched_dep_hour,
        minute as sched_dep_minute,
        -- the source records a cancelled flight as one that never departed
        dep_time is null as is_cancelled

    from source

)

select * from renamed
