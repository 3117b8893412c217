{#- Gold-set evaluation of a classifier's table, per classifier version (docs/quality.md).

    {{ claude_batch.claude_batch_evaluate(ref('review_sentiment'), ref('review_gold'), key_columns=['id']) }}

    `gold`: any relation with the key column(s) and a known label (`gold_label_column`; for
    multi_label a list column, or give one row per label). Compares the gold rows found in `model`
    (rows whose key is in both), per value of `version_column`. One row per version with
    scope = 'overall' (label null) and one per label with scope = 'label':

    - gold_rows: gold rows in the table; labelled_rows: those the classifier gave a label (the rest are
      pending, failed or skipped); coverage = labelled_rows / gold_rows. Every other figure is over the
      labelled rows only, so read it beside coverage.
    - overall: correct (single-label: the label is the gold one; multi-label: exactly the gold set),
      accuracy = correct / labelled_rows; precision, recall, f1: macro averages over the labels
      where each is defined; kappa: Cohen's kappa (single-label: (po - pe) / (1 - pe), po the
      accuracy, pe = sum over labels of gold share x predicted share; multi-label: the mean of the
      per-label kappas); cost_usd: the `cost_column` of every gold row in the table (failed
      attempts included); cost_per_correct_usd = cost_usd / correct.
    - per label: support (labelled rows whose gold has it), predicted, true_positives,
      false_positives, false_negatives, true_negatives; precision = tp / predicted, recall =
      tp / support, f1 = 2 tp / (predicted + support); kappa: one label against the rest.
    Undefined ratios (a zero denominator) are null. `labels`: names to report even with no rows.
    Portable SQL; only reading a list column is adapter-specific (claude_batch_label_pairs). -#}
{% macro claude_batch_evaluate(model, gold, key_columns, gold_label_column=none, label_column=none, multi_label=false,
                               labels=none, version_column='classifier_version', cost_column='cost_usd') %}
  {{ return(adapter.dispatch('claude_batch_evaluate', 'claude_batch')(model, gold, key_columns, gold_label_column,
            label_column, multi_label, labels, version_column, cost_column)) }}
{% endmacro %}

{% macro default__claude_batch_evaluate(model, gold, key_columns, gold_label_column, label_column, multi_label, labels,
                                        version_column, cost_column) %}
  {%- set keys = [key_columns] if key_columns is string else key_columns -%}
  {%- set default_column = 'labels' if multi_label else 'label' -%}
  {%- set float = claude_batch.claude_batch_type_double() -%}
  {#- key lists and join conditions, per table alias (lists grow inside loops; plain sets would not) -#}
  {%- set kg, km, kc, kp, kl, kr, mg, cp, lx = [], [], [], [], [], [], [], [], [] -%}
  {%- for k in keys -%}
    {%- set q = adapter.quote(k) -%}
    {%- do kg.append('g.' ~ q) -%}{%- do km.append('m.' ~ q) -%}{%- do kc.append('c.' ~ q) -%}
    {%- do kp.append('p.' ~ q) -%}{%- do kl.append('l.' ~ q) -%}{%- do kr.append('r.' ~ q) -%}
    {%- do mg.append('m.' ~ q ~ ' = g.' ~ q) -%}{%- do cp.append('c.' ~ q ~ ' = p.' ~ q) -%}
    {%- do lx.append('l.' ~ q ~ ' = x.' ~ q) -%}
  {%- endfor -%}
  {%- set ns = namespace(keys_g=kg | join(', '), keys_m=km | join(', '), keys_c=kc | join(', '), keys_p=kp | join(', '),
                         keys_l=kl | join(', '), keys_r=kr | join(', '), mg=mg | join(' and '), cp=cp | join(' and '),
                         lx=lx | join(' and ')) -%}
  with gold_pairs as (
    select distinct * from ({{ claude_batch.claude_batch_label_pairs(gold, keys, gold_label_column or default_column, multi_label) }}) g
  ),
  predicted_pairs as (
    select distinct * from ({{ claude_batch.claude_batch_label_pairs(model, keys, label_column or default_column, multi_label) }}) p
  ),
  gold_keys as (
    select distinct {{ ns.keys_g }} from gold_pairs g
  ),
  compared as (  -- the gold rows in the classifier's table
    select {{ ns.keys_m }}, m.{{ adapter.quote(version_column) }} as classifier_version,
           m.{{ adapter.quote(cost_column) }} as cost_usd
    from {{ model }} m join gold_keys g on {{ ns.mg }}
  ),
  labelled as (  -- ... that the classifier labelled
    select {{ ns.keys_c }}, c.classifier_version
    from compared c join (select distinct {{ ns.keys_p }} from predicted_pairs p) p on {{ ns.cp }}
  ),
  marks as (
    select {{ ns.keys_g }}, g.label, 1 as in_gold, 0 as in_predicted from gold_pairs g
    union all
    select {{ ns.keys_p }}, p.label, 0 as in_gold, 1 as in_predicted from predicted_pairs p
  ),
  row_labels as (  -- one row per (labelled row, label in its gold or its prediction)
    select {{ ns.keys_l }}, l.classifier_version, x.label,
           max(x.in_gold) as in_gold, max(x.in_predicted) as in_predicted
    from labelled l join marks x on {{ ns.lx }}
    group by {{ ns.keys_l }}, l.classifier_version, x.label
  ),
  row_scores as (
    select classifier_version,
           case when sum(in_gold * in_predicted) = sum(in_gold) and sum(in_gold) = sum(in_predicted) then 1 else 0 end
             as exact
    from row_labels r
    group by {{ ns.keys_r }}, classifier_version
  ),
  totals as (
    select c.classifier_version, count(*) as n_rows, sum(c.cost_usd) as cost_usd,
           max(coalesce(s.labelled_rows, 0)) as labelled_rows, max(coalesce(s.correct, 0)) as correct
    from compared c
    left join (select classifier_version, count(*) as labelled_rows, sum(exact) as correct
               from row_scores group by classifier_version) s
      on s.classifier_version = c.classifier_version or (s.classifier_version is null and c.classifier_version is null)
    group by c.classifier_version
  ),
  counted as (
    select classifier_version, label, sum(in_gold * in_predicted) as true_positives,
           sum(in_gold) as support, sum(in_predicted) as predicted
    from row_labels group by classifier_version, label
  ),
  {%- if labels %}
  named as (
    {%- for name in labels %}
    select '{{ name | replace("'", "''") }}' as label{{ " union all" if not loop.last }}
    {%- endfor %}
  ),
  {%- endif %}
  label_set as (
    select classifier_version, label from counted
    {%- if labels %}
    union
    select t.classifier_version, n.label from totals t cross join named n
    {%- endif %}
  ),
  per_label as (
    select s.classifier_version, s.label, t.labelled_rows,
           coalesce(c.true_positives, 0) as true_positives, coalesce(c.support, 0) as support,
           coalesce(c.predicted, 0) as predicted
    from label_set s
    join totals t on t.classifier_version = s.classifier_version
      or (t.classifier_version is null and s.classifier_version is null)
    left join counted c on c.label = s.label and (c.classifier_version = s.classifier_version
      or (c.classifier_version is null and s.classifier_version is null))
  ),
  per_label_scored as (
    select classifier_version, label, labelled_rows, support, predicted, true_positives,
           predicted - true_positives as false_positives, support - true_positives as false_negatives,
           labelled_rows - support - predicted + true_positives as true_negatives,
           cast(true_positives as {{ float }}) / nullif(predicted, 0) as precision,
           cast(true_positives as {{ float }}) / nullif(support, 0) as recall,
           cast(2 * true_positives as {{ float }}) / nullif(predicted + support, 0) as f1,
           cast(labelled_rows - support - predicted + 2 * true_positives as {{ float }}) / nullif(labelled_rows, 0) as po,
           (cast(predicted as {{ float }}) * support + cast(labelled_rows - predicted as {{ float }}) * (labelled_rows - support))
             / nullif(cast(labelled_rows as {{ float }}) * labelled_rows, 0) as pe
    from per_label
  ),
  overall as (
    select t.classifier_version, t.n_rows, t.labelled_rows, t.correct, t.cost_usd,
           avg(p.precision) as precision, avg(p.recall) as recall, avg(p.f1) as f1,
           {%- if multi_label %}
           avg(case when p.pe < 1 then (p.po - p.pe) / (1 - p.pe) end) as kappa
           {%- else %}
           sum(cast(p.support as {{ float }}) * p.predicted) / nullif(cast(t.labelled_rows as {{ float }}) * t.labelled_rows, 0) as pe
           {%- endif %}
    from totals t
    left join per_label_scored p on p.classifier_version = t.classifier_version
      or (p.classifier_version is null and t.classifier_version is null)
    group by t.classifier_version, t.n_rows, t.labelled_rows, t.correct, t.cost_usd
  )
  select classifier_version, 'overall' as scope, cast(null as {{ dbt.type_string() }}) as label,
         n_rows as gold_rows, labelled_rows, cast(labelled_rows as {{ float }}) / nullif(n_rows, 0) as coverage,
         correct, cast(correct as {{ float }}) / nullif(labelled_rows, 0) as accuracy,
         precision, recall, f1,
         {% if multi_label %}kappa{% else %}case when pe < 1 then (cast(correct as {{ float }}) / nullif(labelled_rows, 0) - pe) / (1 - pe) end{% endif %} as kappa,
         cast(null as {{ dbt.type_int() }}) as support, cast(null as {{ dbt.type_int() }}) as predicted,
         cast(null as {{ dbt.type_int() }}) as true_positives, cast(null as {{ dbt.type_int() }}) as false_positives,
         cast(null as {{ dbt.type_int() }}) as false_negatives, cast(null as {{ dbt.type_int() }}) as true_negatives,
         cost_usd, cost_usd / nullif(correct, 0) as cost_per_correct_usd
  from overall
  union all
  select classifier_version, 'label' as scope, label,
         cast(null as {{ dbt.type_int() }}) as gold_rows, labelled_rows, cast(null as {{ float }}) as coverage,
         cast(null as {{ dbt.type_int() }}) as correct, cast(null as {{ float }}) as accuracy,
         precision, recall, f1, case when pe < 1 then (po - pe) / (1 - pe) end as kappa,
         support, predicted, true_positives, false_positives, false_negatives, true_negatives,
         cast(null as {{ float }}) as cost_usd, cast(null as {{ float }}) as cost_per_correct_usd
  from per_label_scored
{% endmacro %}
