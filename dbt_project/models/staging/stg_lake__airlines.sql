with

source as (

    select * from {{ source('lake_clean', 'airlines') }}

),

renamed as (

    select
        carrier,
        name as carrier_name

    from source

)

select * from renamed
