with

source as (

    select * from {{ source('lake_clean', 'weather') }}

),

renamed as (

    select
        origin,
        time_hour,
        year,
        month,
        day,
        hour,
        temp,
        dewp,
        humid,
        wind_dir,
        wind_speed,
        wind_gust,
        precip,
        pressure,
        visib

    from source

)

select * from renamed
