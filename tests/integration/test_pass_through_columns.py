"""Issue 13, point 4: the `columns` setting copies source columns into the model's output next to
the key, validated at the start of the run. Real dbt builds of a small project written here (it
installs this repository like integration_tests does), against the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROWS = [(1, "I love it, works perfectly", "headset", 5), (2, "Terrible, it broke", "charger", 1),
        (3, "It arrived on Tuesday.", None, 3), (4, "I love it, works perfectly", "case", 4), (5, "", "cable", None)]

MODEL = '''
from claude_batch import classify


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert",
               on_schema_change="append_new_columns")
    return classify(
        dbt, session, source=dbt.source("app", "reviews"), key="id", text="body",
        labels={{"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"}},
        instructions="Classify the sentiment of each review.", model="claude-haiku-5-5", preflight="never",
        {columns}
    )
'''
SCHEMA = """
version: 2
sources:
  - name: app
    schema: app
    tables: [{name: reviews}]
models:
  - name: review_context
    data_tests:
      - claude_batch.every_row_explained:
          arguments: {source_relation: "source('app', 'reviews')", key_columns: [id]}
"""


@pytest.fixture
def context_project(project, tmp_path):
    """A project with one classifier, ``review_context``, whose ``columns`` a test sets."""
    root = tmp_path / "context_project"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: context_project\nversion: '1.0'\nconfig-version: 2\nprofile: claude_batch_integration_tests\n"
        "model-paths: [models]\n")
    (root / "profiles.yml").write_text((REPO / "integration_tests" / "profiles.yml").read_text())
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    (root / "models" / "schema.yml").write_text(SCHEMA)
    subprocess.run([sys.executable, "-m", "dbt.cli.main", "deps", "--project-dir", str(root), "--profiles-dir",
                    str(root)], env={**os.environ, "CLAUDE_BATCH_DUCKDB": ":memory:",
                                     "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}, check=True, capture_output=True)


    class ContextProject(type(project)):  # the integration harness, pointed at this project
        def _args(self, command, select, vars, extra):
            args = super()._args(command, select, vars, extra)
            for flag in ("--project-dir", "--profiles-dir"):
                args[args.index(flag) + 1] = str(root)
            return args

    project = ContextProject(project.tmp, project.env["ANTHROPIC_BASE_URL"])

    def set_columns(columns: list[str] | None) -> None:
        arg = "" if columns is None else f"columns={columns!r},"
        (root / "models" / "review_context.py").write_text(MODEL.format(columns=arg))

    project.set_columns = set_columns
    project.sql("CREATE SCHEMA app")
    project.sql("CREATE TABLE app.reviews (id INTEGER, body VARCHAR, product VARCHAR, stars INTEGER)")
    project.sql("INSERT INTO app.reviews VALUES " + ", ".join("(?, ?, ?, ?)" for _ in ROWS),
                [v for row in ROWS for v in row])
    return project


def table(project) -> dict[int, dict]:
    return {r["id"]: r for r in project.dicts("SELECT * FROM main.review_context ORDER BY id")}


def source(project) -> dict[int, tuple]:
    return {r[0]: (r[1], r[2]) for r in project.sql("SELECT id, product, stars FROM app.reviews")}


def build(project) -> None:
    project.dbt("build", select="review_context")


def test_columns_are_copied_next_to_the_key_and_kept_current(context_project, emulator):
    p = context_project
    p.set_columns(["product", "stars"])
    build(p)
    build(p)
    got = table(p)
    names = [d for (d,) in p.sql("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_name = 'review_context' ORDER BY ordinal_position")]
    assert names[:4] == ["id", "product", "stars", "label"]
    assert {k: (r["product"], r["stars"]) for k, r in got.items()} == source(p)
    assert {got[i]["status"] for i in (1, 2, 3, 4)} == {"succeeded"} and got[5]["status"] == "skipped_empty_text"
    sent = len(emulator.received())

    # A context value changes, the text does not: the row is rewritten, nothing is sent.
    p.sql("UPDATE app.reviews SET product = 'earbuds', stars = 2 WHERE id = 1")
    p.sql("UPDATE app.reviews SET product = 'box' WHERE id = 3")
    build(p)
    got = table(p)
    assert {k: (r["product"], r["stars"]) for k, r in got.items()} == source(p)
    assert got[1]["label"] == "positive" and got[1]["status"] == "succeeded"
    assert len(emulator.received()) == sent


def test_a_column_added_to_an_existing_model_is_filled_on_every_row(context_project, emulator):
    p = context_project
    p.set_columns(None)
    build(p)
    build(p)
    assert "product" not in table(p)[1]
    p.set_columns(["product"])
    build(p)  # dbt appends the column (on_schema_change) while merging this run's rows
    assert "setting 'columns': ['product'] not in the existing table" in (p.logs / "dbt.log").read_text()
    build(p)  # the next run sees it empty and fills every row
    got = table(p)
    assert {k: r["product"] for k, r in got.items()} == {k: v[0] for k, v in source(p).items()}
    assert got[2]["label"] == "negative"


def test_a_missing_column_fails_the_run_at_the_start_naming_it(context_project, emulator):
    p = context_project
    p.set_columns(["product", "no_such_column"])
    result = p.dbt("build", select="review_context", expect_ok=False)
    assert not result.success
    message = " ".join(str(r.message) for r in result.result)
    assert "setting 'columns'" in message and "no_such_column" in message
    assert emulator.received() == []  # nothing was sent
