{#- dbt run-operation claude_batch_retry_failed --args '{classifier: my_model, statuses: [errored, invalid_output]}'
    Gives failed texts a fresh set of attempts: their failed results are removed, and attempts are
    counted from the results, so the next run submits them again. (Their cost stays in cb_requests
    and cb_cost_by_batch.) -#}
{% macro claude_batch_retry_failed(classifier, statuses=['errored', 'expired', 'canceled', 'missing', 'invalid_output']) %}
  {%- set status_list -%}{% for s in statuses %}'{{ s | replace("'", "''") }}'{{ "," if not loop.last }}{% endfor %}{%- endset -%}
  {%- set c = classifier | replace("'", "''") -%}
  {%- set drop_results -%}
    delete from {{ claude_batch_state_relation('cb_results') }}
    where classifier = '{{ c }}' and status in ({{ status_list }})
  {%- endset -%}
  {% set res = run_query(drop_results) %}
  {{ log("Reset failed texts of " ~ classifier ~ " with status in (" ~ status_list ~ "); the next run resubmits them.", info=true) }}
{% endmacro %}
