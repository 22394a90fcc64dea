with

flights as (

    select * from {{ ref('stg_lake__flights') }}

),

final as (

    select
        flight_id,
        flight_date,
        time_hour,
        year,
        month,
        day,
        carrier,
        flight_number,
        tailnum,
        origin,
        dest,
        sched_dep_time,
        dep_time,
        sched_arr_time,
        arr_time,
        is_cancelled,
        dep_delay,
        arr_delay,
        -- same rule as curated.flight_features: late means more than 15 minutes, unknown when the
        -- flight has no arrival delay (cancelled or diverted)
        case
            when arr_delay > 15 then 1
            when arr_delay is not null then 0
        end as arrived_late,
        air_time,
        distance

    from flights

)

select * from final
