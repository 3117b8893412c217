"""Issue 13, point 2: a run killed at a crash point is still in the cost views, and what never
reached the API is counted nowhere. `dbt run` subprocesses SIGKILLed as in test_crash.py (same rows,
same vars, same ``crash`` helper), then normal runs; the views are read straight from DuckDB.
"""

from __future__ import annotations

import pytest
from robust_helpers import sent_rows, twice
from test_crash import ROWS, SENDABLE, VARS, crash


def total(project, sql: str) -> float:
    return project.sql(sql)[0][0] or 0.0


def bill(project) -> float:
    return total(project, "SELECT sum(billed_usd) FROM claude_batch.cb_requests")


def assert_views_sum_to_the_bill(project) -> None:
    billed = bill(project)
    assert billed > 0
    assert total(project, "SELECT sum(billed_usd) FROM claude_batch.cb_cost_by_batch") == pytest.approx(billed, rel=1e-9)
    assert total(project, "SELECT sum(billed_usd) FROM claude_batch.cb_cost_by_run") == pytest.approx(billed, rel=1e-9)


def test_a_run_killed_after_collecting_is_still_in_the_per_run_view(project, emulator):
    project.add_reviews(ROWS)
    project.dbt("run", vars=VARS)  # submits; the emulator ends the batches at once
    assert emulator.wait_idle(30)
    crash(project, "after_collect_write")  # one batch collected and committed, no cb_runs row
    assert project.sql("SELECT count(*) FROM claude_batch.cb_batches WHERE status = 'collected'")[0][0] >= 1
    assert project.sql("SELECT count(*) FROM claude_batch.cb_runs")[0][0] == 1
    assert_views_sum_to_the_bill(project)

    project.settle(vars=VARS)
    assert_views_sum_to_the_bill(project)
    # Every run that submitted is there, with its submissions' bill; the model's table sums to it too.
    by_run = {r["run_id"]: r for r in project.dicts("SELECT * FROM claude_batch.cb_cost_by_run")}
    submitters = {b for (b,) in project.sql("SELECT DISTINCT run_id FROM claude_batch.cb_batches")}
    assert submitters <= set(by_run) and all(by_run[r]["billed_usd"] > 0 for r in submitters)
    assert total(project, "SELECT sum(cost_usd) FROM main.review_sentiment") == pytest.approx(bill(project), rel=1e-9)


def test_a_run_killed_after_creating_its_batch_is_accounted_for(project, emulator):
    project.add_reviews(ROWS)
    crash(project, "after_create")  # the API holds (and will bill) a batch the run never recorded
    (dead,) = project.sql("SELECT DISTINCT run_id FROM claude_batch.cb_batches")[0]
    assert project.sql("SELECT count(*) FROM claude_batch.cb_runs")[0][0] == 0
    assert emulator.wait_idle(30)
    project.settle(vars=VARS)  # reconcile adopts the batch; a later run collects it
    assert twice(emulator) == {}

    row = project.dicts(f"SELECT * FROM claude_batch.cb_cost_by_run WHERE run_id = '{dead}'")
    assert len(row) == 1, "the killed run is missing from cb_cost_by_run"
    row = row[0]
    assert row["finished"] is False and row["finished_at"] is None
    adopted = project.sql("SELECT sum(item_count) FROM claude_batch.cb_batches "
                          "WHERE run_id = ? AND status <> 'abandoned'", [dead])[0][0]
    assert row["submitted_texts"] == adopted > 0
    assert row["billed_usd"] == pytest.approx(total(project, (
        "SELECT sum(r.billed_usd) FROM claude_batch.cb_requests r JOIN claude_batch.cb_batches b "
        f"USING (submission_key) WHERE b.run_id = '{dead}'")), rel=1e-12) and row["billed_usd"] > 0
    assert_views_sum_to_the_bill(project)
    assert total(project, "SELECT sum(cost_usd) FROM main.review_sentiment") == pytest.approx(bill(project), rel=1e-9)


def test_an_abandoned_submission_counts_no_requests_or_items(project, emulator):
    project.add_reviews(ROWS)
    crash(project, "after_intent")  # intents recorded, nothing sent
    project.settle(vars=VARS)  # grace 0: abandoned at once, its texts sent again
    abandoned = project.dicts("SELECT * FROM claude_batch.cb_cost_by_batch WHERE status = 'abandoned'")
    assert abandoned
    assert all(b["items"] == 0 and b["requests"] == 0 for b in abandoned), abandoned
    # Each text rode in exactly one request that reached the API, and the view says so.
    assert set(sent_rows(emulator)) == SENDABLE and twice(emulator) == {}
    assert project.sql("SELECT sum(items) FROM claude_batch.cb_cost_by_batch")[0][0] == len(SENDABLE)
    assert project.sql("SELECT sum(submitted_texts) FROM claude_batch.cb_cost_by_run")[0][0] == len(SENDABLE)
    assert_views_sum_to_the_bill(project)
