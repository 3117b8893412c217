{#- The relation of a state table (cb_batches, cb_requests, cb_results, cb_runs, ...), in the schema
    set by the var `claude_batch_state_schema`, in the target database. -#}
{% macro claude_batch_state_relation(name) %}
  {{ return(adapter.dispatch('claude_batch_state_relation', 'claude_batch')(name)) }}
{% endmacro %}

{% macro default__claude_batch_state_relation(name) %}
  {{ return(api.Relation.create(database=target.database, schema=var('claude_batch_state_schema', 'claude_batch'), identifier=name)) }}
{% endmacro %}
