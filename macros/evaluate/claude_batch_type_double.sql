{#- A double-precision float type for ratios. dbt's type_float() is that on most warehouses, but
    FLOAT is 4 bytes in DuckDB, too coarse for figures compared to 1e-9. -#}
{% macro claude_batch_type_double() %}
  {{ return(adapter.dispatch('claude_batch_type_double', 'claude_batch')()) }}
{% endmacro %}

{% macro default__claude_batch_type_double() %}{{ return(dbt.type_float()) }}{% endmacro %}

{% macro duckdb__claude_batch_type_double() %}{{ return('double') }}{% endmacro %}

{#- Spark's FLOAT is 4 bytes too; DOUBLE is 8 (Spark SQL reference, "Data Types"). -#}
{% macro spark__claude_batch_type_double() %}{{ return('double') }}{% endmacro %}
