{#- dbt run-operation claude_batch_retry_failed --args '{classifier: my_model, statuses: [errored, invalid_output]}'
    Gives failed texts a fresh set of attempts: their failed results are removed, and attempts are
    counted from the results, so the next run submits them again. (Their cost stays in cb_requests
    and cb_cost_by_batch.) One write to one table (cb_results). -#}
{% macro claude_batch_retry_failed(classifier, statuses=['errored', 'expired', 'canceled', 'missing', 'invalid_output']) %}
  {%- set failed -%}
    classifier = '{{ classifier | replace("'", "''") }}'
    and status in ({% for s in statuses %}'{{ s | replace("'", "''") }}'{{ "," if not loop.last }}{% endfor %})
  {%- endset -%}
  {% do adapter.dispatch('claude_batch_retry_failed', 'claude_batch')(failed) %}
  {{ log("Reset failed texts of " ~ classifier ~ " with status in " ~ statuses ~ "; the next run resubmits them.", info=true) }}
{% endmacro %}

{% macro default__claude_batch_retry_failed(failed) %}
  {% do run_query("delete from " ~ claude_batch_state_relation('cb_results') ~ " where " ~ failed) %}
  {% do run_query("commit") if target.type != 'duckdb' %}
{% endmacro %}

{#- Plain Spark tables have no DELETE: one INSERT OVERWRITE of the table without those rows. -#}
{% macro spark__claude_batch_retry_failed(failed) %}
  {% do claude_batch.claude_batch_rewrite_rows(claude_batch_state_relation('cb_results'), {}, "not (" ~ failed ~ ")") %}
{% endmacro %}
