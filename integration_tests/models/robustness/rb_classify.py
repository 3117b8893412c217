"""A classifier configured entirely from vars, for the robustness suites (tests/robustness).

Disabled unless ``--vars '{rb_enabled: true, rb_spec: {...}}'``: ``rb_spec`` holds the keyword
arguments of ``classify`` (key, text or text_template, labels, multi_label, max_tokens, ...) and
``rb_table`` names the source table in schema ``rb``, so a test can try hostile column and table
names, odd labels and bad settings through a real dbt run.
"""

import json

from claude_batch import classify


def model(dbt, session):
    dbt.config(materialized="table")
    meta = dbt.config.get("meta")  # on a line of its own: dbt's parser finds config keys this way
    spec = json.loads((meta or {}).get("rb_spec") or "{}")
    return classify(dbt, session, source=dbt.source("rb", "rows"), **spec)
