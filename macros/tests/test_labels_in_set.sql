{#- Every label in the column is one of `labels`. Works on a single-label column (VARCHAR) and, with
    `multi_label: true`, on a list column (one failing row per bad element). -#}
{% test labels_in_set(model, column_name, labels, multi_label=false) %}
  {{ return(adapter.dispatch('test_labels_in_set', 'claude_batch')(model, column_name, labels, multi_label)) }}
{% endtest %}

{% macro default__test_labels_in_set(model, column_name, labels, multi_label) %}
  {%- set allowed -%}
    {%- for label in labels -%}'{{ label | replace("'", "''") }}'{{ "," if not loop.last }}{%- endfor -%}
  {%- endset -%}
  {%- if multi_label %}
    select label_value
    from (select unnest({{ column_name }}) as label_value from {{ model }}) labels_unnested
    where label_value is not null and label_value not in ({{ allowed }})
  {%- else %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null and {{ column_name }} not in ({{ allowed }})
  {%- endif %}
{% endmacro %}
