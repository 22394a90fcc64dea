with

source as (

    select * from {{ source('lake_raw', 'object_inventory') }}

),

renamed as (

    select
        key as object_key,
        dataset,
        landing_key,
        size as size_bytes,
        sha256,
        content_type,
        split_part(content_type, '/', 1) as media_type,
        image_width,
        image_height,
        audio_duration_seconds,
        audio_sample_rate,
        audio_channels,
        page_count,
        line_count,
        note,
        arrived_at,
        inspected_at

    from source

)

select * from renamed
