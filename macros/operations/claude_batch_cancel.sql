{#- dbt run-operation claude_batch_cancel --args '{classifier: my_model}'
    Marks the classifier's in-flight batches for cancellation; the model's next run calls the API's
    cancel (a SQL macro cannot call the API, and dbt never sees the API key). Rows come back
    `canceled` and are resubmitted by later runs unless the source changes. One write to one table
    (cb_batches), as every state change (docs/state-machine.md). -#}
{% macro claude_batch_cancel(classifier) %}
  {{ return(adapter.dispatch('claude_batch_cancel', 'claude_batch')(classifier)) }}
{% endmacro %}

{% macro default__claude_batch_cancel(classifier) %}
  {%- set sql -%}
    update {{ claude_batch_state_relation('cb_batches') }}
    set error = 'cancel requested'
    where classifier = '{{ classifier | replace("'", "''") }}' and status = 'in_progress'
  {%- endset -%}
  {% do run_query(sql) %}
  {% do run_query("commit") if target.type != 'duckdb' %}
  {{ log("Marked in-flight batches of " ~ classifier ~ " for cancellation; the next `dbt run` cancels them.", info=true) }}
{% endmacro %}

{#- Plain Spark tables have no UPDATE: one INSERT OVERWRITE of the table with the marked rows. -#}
{% macro spark__claude_batch_cancel(classifier) %}
  {%- set c = classifier | replace("'", "''") -%}
  {{ claude_batch.claude_batch_rewrite_rows(
        claude_batch_state_relation('cb_batches'),
        {'error': "case when classifier = '" ~ c ~ "' and status = 'in_progress' then 'cancel requested' else error end"}) }}
  {{ log("Marked in-flight batches of " ~ classifier ~ " for cancellation; the next `dbt run` cancels them.", info=true) }}
{% endmacro %}
