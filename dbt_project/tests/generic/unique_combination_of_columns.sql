{#- The grain of a model: no two rows share the values of `combination_of_columns`. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grain as (

    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as rows_with_key

    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

),

final as (

    select * from grain
    where rows_with_key > 1

)

select * from final

{% endtest %}
