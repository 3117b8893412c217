"""Crash suite for the windows inside a transition (docs/state-machine.md, "Single-table writes").

No state change needs a multi-table transaction: each transition is a few single-table writes, the
``cb_batches`` write last. ``dbt run`` is SIGKILLed between them (``crashpoints.INNER_STEPS``); the
state on disk must show that window, and later runs must end with the table of an uninterrupted run
with every text received by the API exactly once, as in test_crash.py (same rows, same settings).
"""

from __future__ import annotations

import pytest
from claude_batch import _crashpoints as crashpoints
from robust_helpers import batch_entries, sent_rows, twice
from test_crash import ROWS, SENDABLE, VARS, batches, clean_table, crash, final  # noqa: F401  (clean_table: fixture)

PHASES = {
    "intent_before_commit": "submit",
    "submitted_before_requests": "submit",
    "collect_before_commit": "collect",
}


def test_every_inner_step_is_covered():
    assert set(PHASES) == set(crashpoints.INNER_STEPS)


def check_died_in_window(project, emulator, step: str) -> None:
    subs = batches(project)
    requests = project.dicts("SELECT submission_key, status, batch_id FROM claude_batch.cb_requests")
    if step == "intent_before_commit":
        # The first intent's requests and items are written, its submission row is not: not sent.
        assert requests and not subs
        assert project.sql("SELECT count(*) FROM claude_batch.cb_request_items")[0][0] > 0
        assert batch_entries(emulator) == []
    elif step == "submitted_before_requests":
        # The submission has its batch id; its requests still say submitting.
        assert subs and subs[0]["batch_id"] and subs[0]["status"] != "submitting"
        assert {r["status"] for r in requests if r["submission_key"] == subs[0]["submission_key"]} == {"submitting"}
    elif step == "collect_before_commit":
        # Results written, requests updated, the submission not yet marked collected.
        assert project.sql("SELECT count(*) FROM claude_batch.cb_results")[0][0] > 0
        assert any(s["status"] == "ended" and s["collected_at"] is None for s in subs)
    else:  # pragma: no cover
        raise AssertionError(f"no window check for {step}")


@pytest.mark.parametrize("step", list(PHASES))
def test_crash_inside_a_transition_then_recover(project, emulator, clean_table, step):
    project.add_reviews(ROWS)
    if PHASES[step] == "collect":
        project.dbt("run", vars=VARS)  # submits; the emulator finishes the batches at once
        assert emulator.wait_idle(30)
    crash(project, step)
    check_died_in_window(project, emulator, step)

    emulator.wait_idle(30)
    project.settle(vars=VARS)

    assert final(project.table()) == clean_table
    assert twice(emulator) == {}, "a text was submitted twice"
    assert set(sent_rows(emulator)) == SENDABLE
    # Nothing left half-written: every request belongs to a submission, none lags behind it, and
    # every result row was written once.
    assert project.sql("""SELECT count(*) FROM claude_batch.cb_requests r WHERE NOT EXISTS (
                              SELECT 1 FROM claude_batch.cb_batches b WHERE b.submission_key = r.submission_key)""")[0][0] == 0
    assert project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE status IN ('submitting', 'in_flight')")[0][0] == 0
    assert project.sql("""SELECT count(*) FROM (SELECT custom_id, text_hash FROM claude_batch.cb_results
                          GROUP BY custom_id, text_hash HAVING count(*) > 1) d""")[0][0] == 0
    # The bill in the views is the bill of the requests the API answered (nothing counted twice).
    billed, by_batch = project.sql("""SELECT (SELECT sum(billed_usd) FROM claude_batch.cb_requests),
                                             (SELECT sum(billed_usd) FROM claude_batch.cb_cost_by_batch)""")[0]
    assert billed == pytest.approx(by_batch)
