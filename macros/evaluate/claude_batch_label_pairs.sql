{#- (key columns..., label) pairs of a relation: one per row for a single-label column, one per
    element for a multi-label list column. Rows with a null key or no label give no pair.
    Portable for single-label columns; a list column needs the adapter's own unnest (duckdb__ and
    spark__ below), like dbt-utils' cross-database macros. -#}
{% macro claude_batch_label_pairs(relation, key_columns, column, multi_label=false) %}
  {{ return(adapter.dispatch('claude_batch_label_pairs', 'claude_batch')(relation, key_columns, column, multi_label)) }}
{% endmacro %}

{% macro default__claude_batch_label_pairs(relation, key_columns, column, multi_label) %}
  {%- if multi_label -%}
    {{ exceptions.raise_compiler_error("claude_batch: multi-label evaluation reads a list column, which needs an adapter-specific implementation of claude_batch_label_pairs; " ~ adapter.type() ~ " has none (duckdb does)") }}
  {%- endif -%}
  select {% for k in key_columns %}{{ adapter.quote(k) }}, {% endfor %}{{ adapter.quote(column) }} as label
  from {{ relation }}
  where {{ adapter.quote(column) }} is not null
  {%- for k in key_columns %} and {{ adapter.quote(k) }} is not null{% endfor %}
{% endmacro %}

{% macro duckdb__claude_batch_label_pairs(relation, key_columns, column, multi_label) %}
  {%- if not multi_label -%}
    {{ return(claude_batch.default__claude_batch_label_pairs(relation, key_columns, column, multi_label)) }}
  {%- endif -%}
  select {% for k in key_columns %}{{ adapter.quote(k) }}, {% endfor %}label
  from (select {% for k in key_columns %}{{ adapter.quote(k) }}, {% endfor %}unnest({{ adapter.quote(column) }}) as label
        from {{ relation }}) pairs_unnested
  where label is not null
  {%- for k in key_columns %} and {{ adapter.quote(k) }} is not null{% endfor %}
{% endmacro %}

{#- Spark: explode() of an array column in the select list gives one row per element, none for a NULL
    array (spark.apache.org/docs/4.3.0/api/sql/generator-functions, explode). -#}
{% macro spark__claude_batch_label_pairs(relation, key_columns, column, multi_label) %}
  {%- if not multi_label -%}
    {{ return(claude_batch.default__claude_batch_label_pairs(relation, key_columns, column, multi_label)) }}
  {%- endif -%}
  select {% for k in key_columns %}{{ adapter.quote(k) }}, {% endfor %}label
  from (select {% for k in key_columns %}{{ adapter.quote(k) }}, {% endfor %}explode({{ adapter.quote(column) }}) as label
        from {{ relation }}) pairs_exploded
  where label is not null
  {%- for k in key_columns %} and {{ adapter.quote(k) }} is not null{% endfor %}
{% endmacro %}
