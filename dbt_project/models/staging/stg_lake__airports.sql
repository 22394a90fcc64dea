with

source as (

    select * from {{ source('lake_clean', 'airports') }}

),

renamed as (

    select
        faa,
        name as airport_name,
        lat,
        lon,
        alt,
        tz,
        dst,
        tzone

    from source

)

select * from renamed
