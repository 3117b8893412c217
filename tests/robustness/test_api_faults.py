"""Fault suite: API faults from the emulator never lose rows, never pay twice for an answer we got,
and row-level problems never fail a run.

Every run here must succeed (``project.dbt`` asserts it) unless a test says otherwise; the final
state is checked per row, and the emulator's own record (``received()``, ``stats()``) shows what
was sent and which faults fired.
"""

from __future__ import annotations

from collections import Counter

import pytest
from robust_helpers import failure_text, sent_rows, twice

ROWS = [(i, text) for i, text in enumerate([
    "I love it, works perfectly",
    "Terrible, it broke after two days",
    "It arrived on Tuesday.",
    "Excellent quality, great value",
    "Worst purchase ever, awful",
    "Great phone, love the screen",
], start=1)]
TEXTS = {t for _, t in ROWS}
FAST = {"cb_pack_size": 2}


def fired(emulator) -> Counter:
    return Counter({k: v for k, v in emulator.stats()["calls"].items() if k.startswith("fault:")})


def batch_ids(project) -> list[str]:
    return [b for (b,) in project.sql(
        "SELECT batch_id FROM claude_batch.cb_batches WHERE batch_id IS NOT NULL ORDER BY intent_at")]


def assert_all_succeeded_once(project, emulator) -> None:
    table = project.table()
    assert {r["status"] for r in table.values()} == {"succeeded"}, {k: (r["status"], r["error_message"])
                                                                   for k, r in table.items()}
    assert twice(emulator) == {}
    assert set(sent_rows(emulator)) == TEXTS


# ---------------------------------------------------------------------------- HTTP faults (SDK retries)

BURST = [  # three failures in a row: below the client's 4 retries
    {"status": 429, "retry_after": 0.05},
    {"status": 529},
    {"status": 500, "retry_after": 0.05},
]


@pytest.mark.parametrize("target", ["create", "retrieve", "results"])
def test_429_529_500_bursts_are_retried_and_runs_succeed(project, emulator, target):
    project.add_reviews(ROWS)
    if target == "create":
        emulator.set_faults(http_errors=[{**e, "path_prefix": "/v1/messages/batches", "method": "POST"} for e in BURST])
    project.dbt("run", vars=FAST)
    if target != "create":
        (bid,) = batch_ids(project)
        prefix = f"/v1/messages/batches/{bid}" + ("/results" if target == "results" else "")
        emulator.set_faults(http_errors=[{**e, "path_prefix": prefix, "method": "GET"} for e in BURST])
        emulator.wait_idle(30)
        project.dbt("run", vars=FAST)
    assert fired(emulator) == Counter({"fault:http_429": 1, "fault:http_529": 1, "fault:http_500": 1})
    project.settle(vars=FAST)
    assert_all_succeeded_once(project, emulator)
    assert len(batch_ids(project)) == 1  # a retried create made one batch, not two


def test_dropped_connections_on_create_and_collect(project, emulator):
    project.add_reviews(ROWS)
    emulator.set_faults(drop_connections=2)
    project.dbt("run", vars=FAST)
    emulator.wait_idle(30)
    emulator.set_faults(drop_connections=2)
    project.dbt("run", vars=FAST)
    assert fired(emulator)["fault:drop_connection"] == 4
    project.settle(vars=FAST)
    assert_all_succeeded_once(project, emulator)
    assert len(batch_ids(project)) == 1


def test_results_stream_cut_half_way_is_downloaded_again(project, emulator):
    project.add_reviews(ROWS)
    project.dbt("run", vars=FAST)
    emulator.wait_idle(30)
    emulator.set_faults(cut_results=2)
    project.dbt("run", vars=FAST)
    assert fired(emulator)["fault:cut_results"] == 2
    assert project.open_work() == 0
    assert_all_succeeded_once(project, emulator)


def test_results_cut_every_time_skips_the_batch_and_loses_nothing(project, emulator):
    """Downloads that never complete (4 tries): the run still succeeds and says which batch it could
    not read (one unreadable batch must not block the others or new rows), the batch stays 'ended'
    (not collected), and the next run downloads it again; nothing is resubmitted."""
    project.add_reviews(ROWS)
    project.dbt("run", vars=FAST)
    emulator.wait_idle(30)
    emulator.set_faults(cut_results=50)
    project.dbt("run", vars=FAST)
    (bid,) = batch_ids(project)
    assert f"could not collect batch {bid} this run" in (project.logs / "dbt.log").read_text()  # what the user reads
    assert project.sql("SELECT status FROM claude_batch.cb_batches") == [("ended",)]
    assert project.sql("SELECT count(*) FROM claude_batch.cb_results")[0][0] == 0
    emulator.set_faults({})
    project.settle(vars=FAST)
    assert_all_succeeded_once(project, emulator)


# ---------------------------------------------------------------------------- batch outcomes

def test_errored_expired_canceled_rows_get_a_status_then_are_retried(project, emulator):
    rows = [(i, f"review {i}: great product, love it") for i in range(1, 31)]
    project.add_reviews(rows)
    emulator.set_faults(errored_fraction=0.2, expired_fraction=0.2, canceled_fraction=0.2, seed=7)
    one = {"cb_pack_size": 1, "cb_max_attempts": 1}  # no retry yet: the table shows the outcome
    project.dbt("run", vars=one)
    emulator.wait_idle(30)
    project.dbt("run", vars=one)
    table = project.table()
    by_status = Counter(r["status"] for r in table.values())
    assert set(by_status) == {"succeeded", "errored", "expired", "canceled"}, by_status
    for r in table.values():
        if r["status"] == "succeeded":
            assert r["label"] == "positive"
        else:
            assert r["label"] is None and r["labels"] is None
        if r["status"] == "errored":
            assert r["error_type"] in ("api_error", "overloaded_error") and r["error_message"]
    failed = {k for k, r in table.items() if r["status"] != "succeeded"}

    emulator.set_faults({})
    project.settle(vars={"cb_pack_size": 1, "cb_max_attempts": 3})
    final = project.table()
    assert {r["status"] for r in final.values()} == {"succeeded"}
    assert {k for k, r in final.items() if r["attempt"] == 2} == failed
    sent = sent_rows(emulator)
    assert {t for t, n in sent.items() if n == 2} == {dict(rows)[k] for k in failed}
    assert max(sent.values()) == 2
    # Errored, expired and canceled requests are not billed: every text was billed exactly once.
    assert project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE billed_usd > 0")[0][0] == 30


def test_results_archived_before_collection(project, emulator):
    project.add_reviews(ROWS)
    project.dbt("run", vars=FAST)
    emulator.wait_idle(30)
    emulator.advance_clock(30 * 86400)  # past the 29 days results are kept
    project.dbt("run", vars=FAST)
    first = batch_ids(project)[0]
    reqs = project.dicts(f"SELECT status, error_message FROM claude_batch.cb_requests WHERE batch_id = '{first}'")
    assert reqs and {r["status"] for r in reqs} == {"expired"}
    assert all("archived" in r["error_message"] for r in reqs)
    table = project.table()
    assert all("archived" in (r["error_message"] or "") for r in table.values()), table
    project.settle(vars=FAST)
    assert {r["status"] for r in project.table().values()} == {"succeeded"}
    assert set(sent_rows(emulator).values()) == {2}  # results lost: sending again is the only way


def test_batch_still_running_past_expires_at(project, emulator):
    project.add_reviews(ROWS)
    emulator.set_faults(never_finish=True)
    project.dbt("run", vars=FAST)
    emulator.wait_idle(30)
    project.dbt("run", vars=FAST)  # still in progress: nothing is sent again
    assert {r["status"] for r in project.table().values()} == {"in_flight"}
    assert twice(emulator) == {}
    emulator.set_faults({})
    emulator.advance_clock(25 * 3600)
    project.dbt("run", vars=FAST)  # ended, every request expired: resubmitted
    first = batch_ids(project)[0]
    assert project.sql(f"SELECT DISTINCT status FROM claude_batch.cb_requests WHERE batch_id = '{first}'") == [("expired",)]
    project.settle(vars=FAST)
    assert {r["status"] for r in project.table().values()} == {"succeeded"}
    assert set(sent_rows(emulator).values()) == {2}
    assert project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE billed_usd > 0")[0][0] == 3


# ---------------------------------------------------------------------------- refused creates

def test_create_refused_with_400_gives_errored_rows_not_a_crash(project, emulator):
    project.add_reviews(ROWS)
    emulator.set_faults(http_errors=[{"status": 400, "path_prefix": "/v1/messages/batches", "method": "POST"}])
    project.dbt("run", vars=FAST)
    table = project.table()
    assert {r["status"] for r in table.values()} == {"errored"}
    assert {r["error_type"] for r in table.values()} == {"invalid_request_error"}
    assert all("400" in r["error_message"] for r in table.values())
    assert project.sql("SELECT DISTINCT status FROM claude_batch.cb_batches") == [("failed",)]
    assert sent_rows(emulator) == Counter()
    project.dbt("run", vars=FAST)  # an invalid request is not resent as it is
    assert sent_rows(emulator) == Counter()


def test_create_refused_with_413_gives_errored_rows_not_a_crash(emulator_factory, make_project, tmp_path):
    small = emulator_factory(state_dir=tmp_path / "emu-413", max_batch_bytes=500)
    project = make_project(small, "p413")
    project.add_reviews(ROWS)
    for _ in range(3):
        project.dbt("run", vars={"cb_pack_size": 6, "cb_max_attempts": 2})
    table = project.table()
    assert {r["status"] for r in table.values()} == {"errored"}
    assert {r["error_type"] for r in table.values()} == {"request_too_large"}
    assert all(r["attempt"] == 2 for r in table.values())  # tried max_attempts times, then left
    assert sent_rows(small) == Counter()


# ---------------------------------------------------------------------------- bad answers

def test_bad_answers_are_flagged_per_row_never_fail_the_run(project, emulator):
    project.add_reviews(ROWS + [(7, "row the model leaves out"), (8, "row the model garbles")])
    emulator.script({"row the model leaves out": {"omit": True}, "row the model garbles": {"raw": "Sure! positive."}})
    project.settle(vars={"cb_pack_size": 2, "cb_max_attempts": 2})
    table = project.table()
    assert table[7]["status"] == "missing" and table[7]["label"] is None
    assert table[8]["status"] == "invalid_output" and "Sure! positive." in table[8]["raw_answer"]
    assert {table[i]["status"] for i in range(1, 7)} == {"succeeded"}
    assert table[7]["attempt"] == table[8]["attempt"] == 2
