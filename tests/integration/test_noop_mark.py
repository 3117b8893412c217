"""The nightly no-op run, short-circuited (issue 13; python_udfs/claude_batch/noop.py).

A run that sent nothing and changed nothing in the model's table leaves a mark; a later run with the
same source, state and settings returns no rows without scanning or comparing. Every change the
table depends on must still be seen: a changed text, a new row, a result removed from the state,
a changed setting, and a table edited by hand."""

from __future__ import annotations

from collections import Counter

import duckdb


REVIEWS = [(1, "I love it, works perfectly"), (2, "Terrible, it broke"), (3, "It arrived on Tuesday."),
           (4, "I love it, works perfectly")]


def sent(emulator) -> Counter:
    return Counter(t for e in emulator.received() if e.get("batch") not in (None, "messages") for t in e["rows"])


def execute(project, sql: str, params: list | None = None) -> None:
    con = duckdb.connect(str(project.db))
    try:
        con.execute(sql, params or [])
    finally:
        con.close()


def marked(project) -> int:
    """Runs: submit, collect, then a full no-op that verifies the table and marks it."""
    project.add_reviews(REVIEWS)
    project.dbt("run")
    project.dbt("run")
    assert all(r["status"] == "succeeded" for r in project.table().values())
    project.dbt("run")
    return project.sql("SELECT count(*) FROM claude_batch.cb_noop_marks")[0][0]


def last_note(project) -> str:
    return project.sql("SELECT note FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1")[0][0] or ""


def test_a_noop_after_a_verified_one_is_short_circuited_and_logs_the_same(project, emulator):
    assert marked(project) == 1
    before = project.table()
    first = project.logged(lambda: project.dbt("run"))
    assert "no change since run" in last_note(project)
    second = project.logged(lambda: project.dbt("run"))
    assert project.table() == before
    line = "nothing new to classify: 4 row(s) answered from stored results"
    assert first.count(line) == second.count(line) == 1, (first, second)
    assert project.sql("SELECT count(*) FROM claude_batch.cb_noop_marks")[0][0] == 1  # no mark per no-op
    assert project.sql("SELECT source_rows FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1")[0][0] == 4


def test_a_changed_text_and_a_new_row_are_seen_after_a_mark(project, emulator):
    marked(project)
    execute(project, "UPDATE app.reviews SET body = 'Worst purchase ever, awful' WHERE id = 3")
    project.add_reviews([(5, "Broke in a week")])
    project.dbt("run")
    assert "no change" not in last_note(project)
    table = project.table()
    assert table[3]["status"] == "in_flight" and table[5]["status"] == "in_flight"
    project.dbt("run")
    table = project.table()
    assert table[3]["label"] == "negative" and table[5]["label"] == "negative"
    assert sent(emulator)["Worst purchase ever, awful"] == 1 and sent(emulator)["Broke in a week"] == 1


def test_a_result_removed_from_the_state_is_sent_again(project, emulator):
    """As claude_batch_retry_failed does (it deletes results): the state changed, so the run does not
    trust the mark, and the row's text is pending again."""
    marked(project)
    execute(project, "DELETE FROM claude_batch.cb_results WHERE text_hash = "
                     "(SELECT text_hash FROM main.review_sentiment WHERE id = 2)")
    project.dbt("run")
    assert project.table()[2]["status"] == "in_flight"
    assert sent(emulator)["Terrible, it broke"] == 2


def test_a_setting_change_takes_the_full_path(project, emulator):
    marked(project)
    project.dbt("run", vars={"cb_instructions": "Classify the sentiment of each product review."})
    assert "no change" not in last_note(project)
    assert {r["status"] for r in project.table().values()} == {"succeeded"}  # older version's labels kept


def test_a_row_deleted_from_the_table_by_hand_comes_back(project, emulator):
    marked(project)
    execute(project, "DELETE FROM main.review_sentiment WHERE id = 2")
    project.dbt("run")
    table = project.table()
    assert table[2]["label"] == "negative" and table[2]["status"] == "succeeded"
    assert sent(emulator)["Terrible, it broke"] == 1  # from the stored result: nothing paid twice


def test_a_dry_run_is_never_short_circuited(project, emulator):
    marked(project)
    project.dbt("run", vars={"claude_dry_run": True})
    assert "no change" not in last_note(project)
