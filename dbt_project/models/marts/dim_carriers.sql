with

airlines as (

    select * from {{ ref('stg_lake__airlines') }}

),

final as (

    select
        carrier,
        carrier_name

    from airlines

)

select * from final
