{#-
    Daily partitions in dbt. Dagster passes the run's range of days as `--vars`
    {"first_day": "YYYY-MM-DD", "last_day": "YYYY-MM-DD"}: a daily model selects those days and the
    `replace_days` strategy below swaps exactly those days in the target table (days of the range that no
    longer have rows disappear). Without the vars (a hand-run `dbt build`) every day is selected.
-#}

{% macro lake_day_range() %}
    {%- set first = var('first_day', none) -%}
    {%- set last = var('last_day', none) -%}
    {%- if (first is none) != (last is none) -%}
        {{ exceptions.raise_compiler_error("vars first_day and last_day go together; got first_day=" ~ first ~ ", last_day=" ~ last) }}
    {%- endif -%}
    {%- if first is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- for value in [first, last] -%}
        {#- A day is interpolated into SQL: accept nothing but an ISO date. -#}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
            {{ exceptions.raise_compiler_error("var first_day/last_day must be YYYY-MM-DD, got '" ~ value ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if first > last -%}
        {{ exceptions.raise_compiler_error("first_day " ~ first ~ " is after last_day " ~ last) }}
    {%- endif -%}
    {{ return([first | string, last | string]) }}
{% endmacro %}


{% macro in_lake_days(column) -%}
    {#- SQL predicate: `column` within the run's days (always true when no range is given). -#}
    {%- set days = lake_day_range() -%}
    {%- if days is none -%}
        1 = 1
    {%- else -%}
        {{ column }} between cast('{{ days[0] }}' as date) and cast('{{ days[1] }}' as date)
    {%- endif -%}
{%- endmacro %}


{% macro get_incremental_replace_days_sql(arg_dict) %}
    {#-
        Custom incremental strategy: delete the run's days from the target, insert the new rows of those
        days. Both statements run in the materialization's one transaction, so readers see the old days or
        the new ones. The model names its day column with the `day_column` config.
    -#}
    {%- set column = config.get('day_column') -%}
    {%- if not column -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'replace_days' needs the model config day_column") }}
    {%- endif -%}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ target }} where {{ in_lake_days(column) }};
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict["temp_relation"] }}
{% endmacro %}
