{#- Rewrite a table in one atomic write: every row it keeps (`where`, SQL over its columns) with some
    columns replaced (`changes`: column -> SQL expression over the row). How a state change is made
    on an engine without UPDATE or DELETE (plain Spark tables): INSERT OVERWRITE. The rows are
    cached first (CACHE TABLE name AS query: eager, spark.apache.org/docs/latest/sql-ref-syntax-aux-cache-cache-table.html),
    since Spark does not overwrite a table it is reading. Elsewhere UPDATE and DELETE
    do this; the default raises. -#}
{% macro claude_batch_rewrite_rows(relation, changes, where='true') %}
  {{ return(adapter.dispatch('claude_batch_rewrite_rows', 'claude_batch')(relation, changes, where)) }}
{% endmacro %}

{% macro default__claude_batch_rewrite_rows(relation, changes, where) %}
  {{ exceptions.raise_compiler_error("claude_batch_rewrite_rows: " ~ adapter.type() ~ " has UPDATE and DELETE; use them") }}
{% endmacro %}

{% macro spark__claude_batch_rewrite_rows(relation, changes, where) %}
  {%- set columns = adapter.get_columns_in_relation(relation) -%}
  {%- set staged = 'cb_rewrite_' ~ relation.identifier -%}
  {%- set select_list -%}
    {%- for col in columns -%}
      {{ changes.get(col.name, adapter.quote(col.name)) }} as {{ adapter.quote(col.name) }}{{ ", " if not loop.last }}
    {%- endfor -%}
  {%- endset -%}
  {% do run_query("cache table " ~ staged ~ " as select " ~ select_list ~ " from " ~ relation ~ " where " ~ where) %}
  {% do run_query("insert overwrite table " ~ relation ~ " select * from " ~ staged) %}
  {% do run_query("uncache table if exists " ~ staged) %}
  {% do run_query("drop view if exists " ~ staged) %}
{% endmacro %}
