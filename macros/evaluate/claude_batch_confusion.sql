{#- The confusion matrix of a classifier's table against gold labels, per classifier version, over
    the gold rows it labelled (claude_batch_evaluate's labelled rows).

    Single-label: one row per (classifier_version, gold_label, predicted_label) with `row_count`.
    Multi-label: one 2x2 matrix per label (a row may carry several labels, so there is no single
    predicted label to cross with): (classifier_version, label, gold, predicted, row_count), gold and
    predicted booleans: whether the row's gold / predicted set holds the label. -#}
{% macro claude_batch_confusion(model, gold, key_columns, gold_label_column=none, label_column=none, multi_label=false,
                                version_column='classifier_version') %}
  {{ return(adapter.dispatch('claude_batch_confusion', 'claude_batch')(model, gold, key_columns, gold_label_column,
            label_column, multi_label, version_column)) }}
{% endmacro %}

{% macro default__claude_batch_confusion(model, gold, key_columns, gold_label_column, label_column, multi_label,
                                         version_column) %}
  {%- set keys = [key_columns] if key_columns is string else key_columns -%}
  {%- set default_column = 'labels' if multi_label else 'label' -%}
  {#- key lists and join conditions, per table alias (lists grow inside loops; plain sets would not) -#}
  {%- set kg, km, kp, kl, mg, mp, lx = [], [], [], [], [], [], [] -%}
  {%- for k in keys -%}
    {%- set q = adapter.quote(k) -%}
    {%- do kg.append('g.' ~ q) -%}{%- do km.append('m.' ~ q) -%}{%- do kp.append('p.' ~ q) -%}{%- do kl.append('l.' ~ q) -%}
    {%- do mg.append('m.' ~ q ~ ' = g.' ~ q) -%}{%- do mp.append('m.' ~ q ~ ' = p.' ~ q) -%}
    {%- do lx.append('l.' ~ q ~ ' = x.' ~ q) -%}
  {%- endfor -%}
  {%- set ns = namespace(cols_g=kg | join(', '), cols_m=km | join(', '), cols_p=kp | join(', '), cols_l=kl | join(', '),
                         on_mg=mg | join(' and '), on_mp=mp | join(' and '), on_lx=lx | join(' and ')) -%}
  with gold_pairs as (
    select distinct * from ({{ claude_batch.claude_batch_label_pairs(gold, keys, gold_label_column or default_column, multi_label) }}) g
  ),
  predicted_pairs as (
    select distinct * from ({{ claude_batch.claude_batch_label_pairs(model, keys, label_column or default_column, multi_label) }}) p
  ),
  labelled as (
    select {{ ns.cols_m }}, m.{{ adapter.quote(version_column) }} as classifier_version
    from {{ model }} m
    join (select distinct {{ ns.cols_g }} from gold_pairs g) g on {{ ns.on_mg }}
    join (select distinct {{ ns.cols_p }} from predicted_pairs p) p on {{ ns.on_mp }}
  ),
  {%- if multi_label %}
  marks as (
    select {{ ns.cols_g }}, g.label, 1 as in_gold, 0 as in_predicted from gold_pairs g
    union all
    select {{ ns.cols_p }}, p.label, 0 as in_gold, 1 as in_predicted from predicted_pairs p
  ),
  row_labels as (
    select {{ ns.cols_l }}, l.classifier_version, x.label, max(x.in_gold) as in_gold, max(x.in_predicted) as in_predicted
    from labelled l join marks x on {{ ns.on_lx }}
    group by {{ ns.cols_l }}, l.classifier_version, x.label
  ),
  label_set as (
    select distinct classifier_version, label from row_labels
  ),
  versions as (
    select classifier_version, count(*) as labelled_rows from labelled group by classifier_version
  ),
  counted as (
    select classifier_version, label, sum(in_gold * in_predicted) as tp, sum(in_gold) as support,
           sum(in_predicted) as predicted
    from row_labels group by classifier_version, label
  ),
  cells as (
    select s.classifier_version, s.label, v.labelled_rows, c.tp, c.support, c.predicted
    from label_set s
    join versions v on v.classifier_version = s.classifier_version
      or (v.classifier_version is null and s.classifier_version is null)
    join counted c on c.label = s.label and (c.classifier_version = s.classifier_version
      or (c.classifier_version is null and s.classifier_version is null))
  )
  select classifier_version, label, true as gold, true as predicted, tp as row_count from cells
  union all
  select classifier_version, label, true, false, support - tp from cells
  union all
  select classifier_version, label, false, true, predicted - tp from cells
  union all
  select classifier_version, label, false, false, labelled_rows - support - predicted + tp from cells
  {%- else %}
  predicted as (
    select {{ ns.cols_l }}, l.classifier_version, x.label
    from labelled l join predicted_pairs x on {{ ns.on_lx }}
  )
  select l.classifier_version, x.label as gold_label, l.label as predicted_label, count(*) as row_count
  from predicted l join gold_pairs x on {{ ns.on_lx }}
  group by l.classifier_version, x.label, l.label
  {%- endif %}
{% endmacro %}
