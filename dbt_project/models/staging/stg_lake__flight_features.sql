with

source as (

    select * from {{ source('lake_curated', 'flight_features') }}

),

renamed as (

    select
        flight_id,
        flight_date,
        time_hour,
        year,
        month,
        day,
        day_of_week,
        sched_dep_hour,
        sched_dep_time,
        carrier,
        flight as flight_number,
        tailnum,
        origin,
        dest,
        distance,
        dep_delay,
        arr_delay,
        cancelled as is_cancelled,
        arrived_late,
        temp,
        dewp,
        humid,
        wind_dir,
        wind_speed,
        wind_gust,
        precip,
        pressure,
        visib,
        plane_year,
        plane_seats,
        plane_engines,
        plane_manufacturer,
        plane_type

    from source

)

select * from renamed
