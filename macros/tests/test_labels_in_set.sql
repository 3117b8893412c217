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
    {#- One row per list element, through the adapter's own unnest (claude_batch_label_pairs). -#}
    select label as label_value
    from ({{ claude_batch.claude_batch_label_pairs(model, [], column_name, true) }}) labels_unnested
    where label not in ({{ allowed }})
  {%- else %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null and {{ column_name }} not in ({{ allowed }})
  {%- endif %}
{% endmacro %}
