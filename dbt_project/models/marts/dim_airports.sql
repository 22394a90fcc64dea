with

airports as (

    select * from {{ ref('stg_lake__airports') }}

),

final as (

    select
        faa,
        airport_name,
        lat,
        lon,
        alt,
        tz,
        dst,
        tzone

    from airports

)

select * from final
