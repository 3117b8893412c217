{#- Every row of the source is in the classified model with a status (a label, or why not), and a
    'succeeded' row has a label. Fails with the source keys that are missing or unexplained. -#}
{% test every_row_explained(model, source_relation, key_columns, status_column='status', label_column='label') %}
  {%- set keys = [key_columns] if key_columns is string else key_columns -%}
  {%- set join_on -%}
    {%- for k in keys -%}m.{{ adapter.quote(k) }} = s.{{ adapter.quote(k) }}{{ " and " if not loop.last }}{%- endfor -%}
  {%- endset -%}
  select {% for k in keys %}s.{{ adapter.quote(k) }}{{ ", " if not loop.last }}{% endfor %},
         m.{{ status_column }} as status
  from {{ source_relation }} s
  left join {{ model }} m on {{ join_on }}
  where ({% for k in keys %}s.{{ adapter.quote(k) }} is not null{{ " and " if not loop.last }}{% endfor %})
    and (m.{{ status_column }} is null
         or (m.{{ status_column }} = 'succeeded' and m.{{ label_column }} is null and m.labels is null))
{% endtest %}
