{#-
    On Redshift the lake's Glue databases are read through Spectrum external schemas of the same
    name. This creates them when LAKE_REDSHIFT_SPECTRUM_ROLE names the IAM role Redshift assumes to
    read Glue and S3; when it is unset the schemas are expected to exist already (created by the
    platform's infrastructure code). Other adapters read the lake's Parquet directly: no-op.
    run_query sends one statement per call, so each schema is created by its own statement.
-#}
{% macro create_spectrum_schemas() %}
    {{ return(adapter.dispatch('create_spectrum_schemas')()) }}
{% endmacro %}

{% macro default__create_spectrum_schemas() %}
{% endmacro %}

{% macro redshift__create_spectrum_schemas() %}
    {%- set role = env_var('LAKE_REDSHIFT_SPECTRUM_ROLE', '') -%}
    {%- if execute and role -%}
        {%- for zone in ['raw', 'clean', 'curated'] -%}
            {%- set database = var('lake_database_prefix') ~ '_' ~ zone -%}
            {%- do run_query(
                "create external schema if not exists " ~ database
                ~ " from data catalog database '" ~ database ~ "'"
                ~ " iam_role '" ~ role ~ "'"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
