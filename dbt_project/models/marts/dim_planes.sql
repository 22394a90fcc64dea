with

planes as (

    select * from {{ ref('stg_lake__planes') }}

),

final as (

    select
        tailnum,
        year_built,
        plane_type,
        manufacturer,
        model,
        engines,
        seats,
        speed,
        engine_type

    from planes

)

select * from final
