{#- dbt run-operation claude_batch_retry_failed --args '{classifier: my_model, statuses: [errored, invalid_output]}'
    Gives failed texts a fresh set of attempts: their results are removed and their past attempts
    no longer count, so the next run submits them again. -#}
{% macro claude_batch_retry_failed(classifier, statuses=['errored', 'expired', 'canceled', 'missing', 'invalid_output']) %}
  {%- set status_list -%}{% for s in statuses %}'{{ s | replace("'", "''") }}'{{ "," if not loop.last }}{% endfor %}{%- endset -%}
  {%- set c = classifier | replace("'", "''") -%}
  {%- set reset_items -%}
    update {{ claude_batch_state_relation('cb_request_items') }} set status = 'retry_reset'
    where (version, text_hash) in (
      select version, text_hash from {{ claude_batch_state_relation('cb_results') }}
      where classifier = '{{ c }}' and status in ({{ status_list }}))
  {%- endset -%}
  {%- set drop_results -%}
    delete from {{ claude_batch_state_relation('cb_results') }}
    where classifier = '{{ c }}' and status in ({{ status_list }})
  {%- endset -%}
  {% do run_query(reset_items) %}
  {% set res = run_query(drop_results) %}
  {{ log("Reset failed texts of " ~ classifier ~ " with status in (" ~ status_list ~ "); the next run resubmits them.", info=true) }}
{% endmacro %}
