{#- Every source row (non-null key) is explained by the classified model. A failing row is returned
    with its source key(s), the model's status and `why`:
    1. 'not in the model, or no status': the key has no row in the model, or its status is null;
    2. 'no label': its status carries a label ('succeeded'; 'reclassifying': the label of an older
       version kept while the current version's answer is on its way; 'escalating': the unsure answer
       kept while the stronger model's is on its way; 'escalated': the stronger model's) but the row
       has none, or no classifier_version;
    3. 'label lost': the row shows no label yet ('in_flight', 'pending') although its text already has
       a successful answer under a version of this classifier in the state (cb_results, cb_versions):
       the table dropped a label it had (as reclassifying once did, until the new batch ended).
    Check 3 reads the state schema (the var `claude_batch_state_schema`, as the operations do) and is
    skipped when the state tables are not there; `classifier` defaults to the model's name. -#}
{% test every_row_explained(model, source_relation, key_columns, status_column='status', label_column='label', classifier=none) %}
  {{ return(adapter.dispatch('test_every_row_explained', 'claude_batch')(model, source_relation, key_columns,
            status_column, label_column, classifier)) }}
{% endtest %}

{#- Portable SQL (joins, CASE, EXISTS): no adapter needs its own. -#}
{% macro default__test_every_row_explained(model, source_relation, key_columns, status_column, label_column, classifier) %}
  {%- set keys = [key_columns] if key_columns is string else key_columns -%}
  {%- set join_on -%}
    {%- for k in keys -%}m.{{ adapter.quote(k) }} = s.{{ adapter.quote(k) }}{{ " and " if not loop.last }}{%- endfor -%}
  {%- endset -%}
  {%- set name = classifier if classifier else model.identifier -%}
  {%- set results = claude_batch.claude_batch_state_relation('cb_results') -%}
  {%- set versions = claude_batch.claude_batch_state_relation('cb_versions') -%}
  {%- set state_found = execute
        and adapter.get_relation(database=results.database, schema=results.schema, identifier=results.identifier) is not none
        and adapter.get_relation(database=versions.database, schema=versions.schema, identifier=versions.identifier) is not none -%}
  select * from (
    select {% for k in keys %}s.{{ adapter.quote(k) }}, {% endfor %}
           m.{{ status_column }} as status,
           case when m.{{ status_column }} is null then 'not in the model, or no status'
                when m.{{ status_column }} in ('succeeded', 'reclassifying', 'escalating', 'escalated')
                     and ((m.{{ label_column }} is null and m.labels is null) or m.classifier_version is null)
                  then 'no label'
                {%- if state_found %}
                when m.{{ status_column }} in ('in_flight', 'pending') and exists (
                       select 1 from {{ results }} r
                       join {{ versions }} v on v.version = r.version and v.classifier = '{{ name | replace("'", "''") }}'
                       where r.text_hash = m.text_hash and r.status = 'succeeded')
                  then 'label lost'
                {%- endif %}
           end as why
    from {{ source_relation }} s
    left join {{ model }} m on {{ join_on }}
    where {% for k in keys %}s.{{ adapter.quote(k) }} is not null{{ " and " if not loop.last }}{% endfor %}
  ) unexplained
  where why is not null
{% endmacro %}
