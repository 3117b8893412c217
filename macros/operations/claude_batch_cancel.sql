{#- dbt run-operation claude_batch_cancel --args '{classifier: my_model}'
    Marks the classifier's in-flight batches for cancellation; the model's next run calls the API's
    cancel (a SQL macro cannot call the API, and dbt never sees the API key). Rows come back
    `canceled` and are resubmitted by later runs unless the source changes. -#}
{% macro claude_batch_cancel(classifier) %}
  {%- set sql -%}
    update {{ claude_batch_state_relation('cb_batches') }}
    set error = 'cancel requested'
    where classifier = '{{ classifier | replace("'", "''") }}' and status = 'in_progress'
  {%- endset -%}
  {% do run_query(sql) %}
  {% do run_query("commit") if target.type != 'duckdb' %}
  {{ log("Marked in-flight batches of " ~ classifier ~ " for cancellation; the next `dbt run` cancels them.", info=true) }}
{% endmacro %}
