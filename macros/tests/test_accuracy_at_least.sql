{#- Labels are good enough: the classifier's table against gold labels (claude_batch_evaluate), per
    classifier version, fails with one row per bar it misses (classifier_version, metric, label,
    value, minimum).

    - min_accuracy, min_kappa, min_coverage: overall bars;
    - min_precision, min_recall, min_f1: per label, a number (every label that has a value) or a
      mapping {label: minimum} (a label named there with no value, e.g. no gold rows, fails);
    - classifier_version: only that version (default: every version in the table with at least
      `min_rows` labelled gold rows; a version below that is skipped, not failed).
    Other arguments as claude_batch_evaluate. -#}
{% test accuracy_at_least(model, gold, key_columns, min_accuracy=none, min_kappa=none, min_coverage=none,
                          min_precision=none, min_recall=none, min_f1=none, classifier_version=none, min_rows=1,
                          gold_label_column=none, label_column=none, multi_label=false,
                          version_column='classifier_version', cost_column='cost_usd') %}
  {{ return(adapter.dispatch('test_accuracy_at_least', 'claude_batch')(model, gold, key_columns, min_accuracy, min_kappa,
            min_coverage, min_precision, min_recall, min_f1, classifier_version, min_rows, gold_label_column,
            label_column, multi_label, version_column, cost_column)) }}
{% endtest %}

{% macro default__test_accuracy_at_least(model, gold, key_columns, min_accuracy, min_kappa, min_coverage, min_precision,
                                         min_recall, min_f1, classifier_version, min_rows, gold_label_column,
                                         label_column, multi_label, version_column, cost_column) %}
  {#- A bar may arrive as text from a var: "None" / "" is no bar, "{...}" a mapping (JSON or Python). -#}
  {%- set given = {} -%}
  {%- for name, value in [('accuracy', min_accuracy), ('kappa', min_kappa), ('coverage', min_coverage),
                          ('precision', min_precision), ('recall', min_recall), ('f1', min_f1)] -%}
    {%- if value is string and value | trim | lower in ('', 'none', 'null') -%}
      {%- do given.update({name: none}) -%}
    {%- elif value is string and value | trim | first == '{' -%}
      {%- do given.update({name: fromjson(value | replace("'", '"'))}) -%}
    {%- else -%}
      {%- do given.update({name: value}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set bars = [] -%}
  {%- for metric, minimum in [('accuracy', given.accuracy), ('kappa', given.kappa), ('coverage', given.coverage)] -%}
    {%- if minimum is not none -%}
      {%- do bars.append("select classifier_version, '" ~ metric ~ "' as metric, label, " ~ metric ~ " as value, "
                         ~ minimum ~ " as minimum from scores where scope = 'overall' and coalesce("
                         ~ metric ~ " < " ~ minimum ~ ", true)") -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for metric, minimum in [('precision', given.precision), ('recall', given.recall), ('f1', given.f1)] -%}
    {%- if minimum is mapping -%}
      {%- for name, value in minimum.items() -%}
        {%- set quoted = "'" ~ (name | replace("'", "''")) ~ "'" -%}
        {%- do bars.append("select v.classifier_version, '" ~ metric ~ "' as metric, " ~ quoted ~ " as label, s."
                           ~ metric ~ " as value, " ~ value ~ " as minimum from versions v left join scores s"
                           ~ " on s.classifier_version = v.classifier_version and s.scope = 'label' and s.label = "
                           ~ quoted ~ " where coalesce(s." ~ metric ~ " < " ~ value ~ ", true)") -%}
      {%- endfor -%}
    {%- elif minimum is not none -%}
      {%- do bars.append("select classifier_version, '" ~ metric ~ "' as metric, label, " ~ metric ~ " as value, "
                         ~ minimum ~ " as minimum from scores where scope = 'label' and " ~ metric ~ " < " ~ minimum) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if not bars -%}
    {{ exceptions.raise_compiler_error("claude_batch.accuracy_at_least: give at least one of min_accuracy, min_kappa, min_coverage, min_precision, min_recall, min_f1") }}
  {%- endif -%}
  with all_scores as (
    {{ claude_batch.claude_batch_evaluate(model, gold, key_columns, gold_label_column, label_column, multi_label, none,
                                          version_column, cost_column) }}
  ),
  versions as (  -- the versions judged: enough labelled gold rows (and the one asked for)
    select classifier_version from all_scores
    where scope = 'overall' and labelled_rows >= {{ min_rows }}
    {%- if classifier_version is not none %}
      and classifier_version = '{{ classifier_version | replace("'", "''") }}'
    {%- endif %}
  ),
  scores as (
    select a.* from all_scores a join versions v on v.classifier_version = a.classifier_version
  )
  {% for bar in bars -%}
  {{ bar }}
  {{ "union all" if not loop.last }}
  {% endfor %}
{% endmacro %}
