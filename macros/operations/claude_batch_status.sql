{#- dbt run-operation claude_batch_status [--args '{classifier: my_model}']
    Prints batches by status and results by status, per classifier. Reads only. -#}
{% macro claude_batch_status(classifier=none) %}
  {% do adapter.dispatch('claude_batch_status', 'claude_batch')(classifier) %}
{% endmacro %}

{#- Portable SQL: explicit GROUP BY (no DuckDB `group by all`). -#}
{% macro default__claude_batch_status(classifier) %}
  {%- set where = "where classifier = '" ~ (classifier | replace("'", "''")) ~ "'" if classifier else "" -%}
  {%- set batches_sql -%}
    select classifier, mode, status, count(*) as batches, sum(request_count) as requests, sum(item_count) as texts,
           min(intent_at) as oldest, max(intent_at) as newest
    from {{ claude_batch_state_relation('cb_batches') }} {{ where }}
    group by classifier, mode, status order by classifier, status
  {%- endset -%}
  {%- set results_sql -%}
    select classifier, status, coalesce(error_type, '') as error_type, count(*) as texts
    from {{ claude_batch_state_relation('cb_current_results') }} {{ where }}
    group by classifier, status, coalesce(error_type, '') order by classifier, status
  {%- endset -%}
  {%- set cost_sql -%}
    select classifier, count(*) as runs, round(sum(billed_usd), 6) as billed_usd, round(sum(naive_usd), 6) as naive_usd,
           round(sum(naive_usd) - sum(billed_usd), 6) as saved_usd
    from {{ claude_batch_state_relation('cb_runs') }} {{ where }}
    group by classifier order by classifier
  {%- endset -%}
  {% if execute %}
    {{ log("Batches:", info=true) }}
    {% do run_query(batches_sql).print_table(max_columns=10, max_column_width=24) %}
    {{ log("Results (one per distinct text and version):", info=true) }}
    {% do run_query(results_sql).print_table(max_columns=10, max_column_width=30) %}
    {{ log("Cost:", info=true) }}
    {% do run_query(cost_sql).print_table(max_columns=10) %}
  {% endif %}
{% endmacro %}
