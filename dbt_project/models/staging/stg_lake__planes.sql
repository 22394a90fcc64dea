with

source as (

    select * from {{ source('lake_clean', 'planes') }}

),

renamed as (

    select
        tailnum,
        year as year_built,
        type as plane_type,
        manufacturer,
        model,
        engines,
        seats,
        speed,
        engine as engine_type

    from source

)

select * from renamed
