"""realtime.submit and realtime.abandon_leftovers on real state tables (DuckDB) and the emulator.

Runs go through the pipeline's public entry point (``pipeline.run``) with mode realtime; a crash is
a real SIGKILL of a subprocess, in the middle of its calls or at a named crash point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from claude_batch import config as config_mod, pipeline, realtime
from claude_batch.state import StateStore
from claude_batch.warehouse import Warehouse

REVIEWS = [
    (1, "I love it, works perfectly, highly recommend"),
    (2, "Terrible. It broke after two days, I want a refund"),
    (3, "Excellent quality, great value"),
    (4, "Worst purchase ever, awful and disappointed"),
    (5, "I love it, works perfectly, highly recommend"),  # same text as row 1: sent once
    (6, "Great, fast and reliable"),
    (7, "Awful, defective junk"),
]
EXPECTED = {1: "positive", 2: "negative", 3: "positive", 4: "negative", 5: "positive", 6: "positive", 7: "negative"}
ALL_SUCCEEDED = {k: (v, "succeeded") for k, v in EXPECTED.items()}


def _config(**overrides):
    options = {
        "key": "id", "text": "body", "labels": ["positive", "negative"],
        "instructions": "Classify the sentiment of each customer review.",
        "mode": "realtime", "pack_size": 2, **overrides,
    }
    return config_mod.build_config("reviews_rt", options)


def _connect(path: Path | str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE IF NOT EXISTS reviews (id INTEGER, body VARCHAR)")
    if not con.execute("SELECT count(*) FROM reviews").fetchall()[0][0]:
        con.executemany("INSERT INTO reviews VALUES (?, ?)", REVIEWS)
    return con


def _run_once(con, client, **overrides) -> dict:
    """One run through the pipeline's public entry point; the (label, status) it returns per id."""
    cfg = _config(**overrides)
    wh = Warehouse(con)
    store = StateStore(wh)
    store.ensure()
    realtime.abandon_leftovers(store, cfg.name)  # what Pipeline.reconcile is to call (idempotent)
    rel = pipeline.run(cfg, wh, "reviews", client=client)
    names = rel.columns
    return {r[names.index("id")]: (r[names.index("label")], r[names.index("status")]) for r in rel.fetchall()}


def _last_run(con) -> dict:
    cur = con.execute("SELECT * FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1")
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchall()[0]))


def test_submit_writes_results_usage_and_costs_like_a_batch(emulator):
    con = _connect()
    assert _run_once(con, emulator.client()) == ALL_SUCCEEDED
    # Six distinct texts in packs of two: three requests, one submission, all at standard price.
    reqs = con.execute(
        "SELECT custom_id, submission_key, status, service_tier, billed_usd, input_tokens FROM claude_batch.cb_requests"
    ).fetchall()
    assert len(reqs) == 3
    assert {r[2] for r in reqs} == {"succeeded"} and {r[3] for r in reqs} == {"standard"}
    assert all(r[4] > 0 and r[5] > 0 and r[0].startswith(r[1]) for r in reqs)
    batch = con.execute(
        "SELECT mode, status, batch_id, submission_key, succeeded, errored FROM claude_batch.cb_batches"
    ).fetchall()
    assert len(batch) == 1
    mode, status, batch_id, sub_key, succeeded, errored = batch[0]
    assert (mode, status, batch_id, succeeded, errored) == ("realtime", "collected", f"rt_{sub_key}", 3, 0)
    run = _last_run(con)
    assert (run["mode"], run["submitted_requests"], run["submitted_texts"], run["submitted_batches"]) == (
        "realtime", 3, 6, 1)
    assert (run["collected_requests"], run["collected_items"]) == (3, 6)
    assert run["billed_usd"] == pytest.approx(sum(r[4] for r in reqs))
    assert run["naive_usd"] > 0
    view = con.execute("SELECT mode, billed_usd, naive_usd FROM claude_batch.cb_cost_by_batch").fetchall()
    assert view == [("realtime", pytest.approx(run["billed_usd"]), pytest.approx(run["naive_usd"]))]
    # Second run: nothing pending, nothing sent.
    calls = len(emulator.received())
    assert _run_once(con, emulator.client()) == ALL_SUCCEEDED
    assert _last_run(con)["submitted_requests"] == 0 and len(emulator.received()) == calls


def test_submit_splits_into_chunks_each_its_own_submission(emulator, monkeypatch):
    monkeypatch.setattr(realtime, "CHUNK_REQUESTS", 2)
    con = _connect()
    assert _run_once(con, emulator.client(), pack_size=1) == ALL_SUCCEEDED
    subs = con.execute("SELECT submission_key, request_count, status FROM claude_batch.cb_batches ORDER BY intent_at").fetchall()
    assert [s[1] for s in subs] == [2, 2, 2] and {s[2] for s in subs} == {"collected"}
    assert len({s[0] for s in subs}) == 3
    owners = con.execute("SELECT custom_id, submission_key FROM claude_batch.cb_requests").fetchall()
    assert all(cid.startswith(key) for cid, key in owners)
    assert _last_run(con)["submitted_batches"] == 3


def test_a_garbled_answer_is_flagged_and_the_other_rows_succeed(emulator):
    emulator.script({"Great, fast and reliable": {"raw": "not json at all"}})
    con = _connect()
    labels = _run_once(con, emulator.client(), pack_size=1)
    assert labels[6] == (None, "invalid_output")
    assert all(labels[k] == v for k, v in ALL_SUCCEEDED.items() if k != 6)


def test_fatal_api_error_stops_after_the_first_chunk(emulator_factory, monkeypatch):
    emu = emulator_factory(api_keys=["the-right-key"])
    monkeypatch.setattr(realtime, "CHUNK_REQUESTS", 1)
    import anthropic

    wrong = anthropic.Anthropic(base_url=emu.base_url, api_key="a-wrong-key", max_retries=0)
    con = _connect()
    labels = _run_once(con, wrong, pack_size=1)
    # The first chunk was sent (and the one started alongside it); the rest stay pending.
    assert 1 <= _last_run(con)["submitted_batches"] <= 2
    errors = con.execute("SELECT DISTINCT error_type FROM claude_batch.cb_requests").fetchall()
    assert errors == [("authentication_error",)]
    assert sum(1 for _, status in labels.values() if status == "pending") >= 3


def test_abandon_leftovers_touches_only_realtime_leftovers(emulator):
    con = _connect()
    store = StateStore(Warehouse(con))
    store.ensure()
    t = store.t["cb_batches"]
    for key, mode, status in [("rt_submitting", "realtime", "submitting"), ("rt_inprogress", "realtime", "in_progress"),
                              ("rt_done", "realtime", "collected"), ("b_submitting", "batch", "submitting"),
                              ("b_inprogress", "batch", "in_progress")]:
        con.execute(f"INSERT INTO {t} (submission_key, classifier, mode, status, item_count, intent_at) "
                    "VALUES (?, 'reviews_rt', ?, ?, 1, now()::TIMESTAMP)", [key, mode, status])
    con.execute(f"INSERT INTO {t} (submission_key, classifier, mode, status, item_count, intent_at) "
                "VALUES ('other', 'another_classifier', 'realtime', 'in_progress', 1, now()::TIMESTAMP)")

    assert realtime.abandon_leftovers(store, "reviews_rt") == 2
    got = dict(con.execute(f"SELECT submission_key, status FROM {t}").fetchall())
    assert got == {"rt_submitting": "abandoned", "rt_inprogress": "abandoned", "rt_done": "collected",
                   "b_submitting": "submitting", "b_inprogress": "in_progress", "other": "in_progress"}
    assert realtime.abandon_leftovers(store, "reviews_rt") == 0


CRASHING_RUN = textwrap.dedent("""
    import sys, duckdb, anthropic
    sys.path.insert(0, {here!r})
    from test_realtime_submit import _connect, _run_once
    con = _connect({db!r})
    _run_once(con, anthropic.Anthropic(base_url={url!r}, api_key="k", max_retries=0), pack_size=1,
              realtime_concurrency=1)
""")


def test_a_real_crash_mid_chunk_is_recovered_by_the_next_run(emulator, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    _connect(db).close()
    emulator.set_faults(latency_seconds=0.5)  # slow calls: time to kill the run in the middle
    script = CRASHING_RUN.format(here=str(Path(__file__).parent), db=str(db), url=emulator.base_url)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(emulator.received()) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    emulator.set_faults({})

    con = duckdb.connect(str(db))
    left = con.execute("SELECT mode, status FROM claude_batch.cb_batches").fetchall()
    assert left == [("realtime", "in_progress")]
    assert _run_once(con, emulator.client(), pack_size=1) == ALL_SUCCEEDED
    assert con.execute("SELECT status FROM claude_batch.cb_batches ORDER BY intent_at").fetchall() == [
        ("abandoned",), ("collected",)
    ]
    assert _last_run(con)["submitted_texts"] == 6  # every row again, none lost


@pytest.mark.parametrize("step, left_as", [("after_intent", "submitting"), ("after_submitted", "in_progress")])
def test_named_crash_points_before_any_call_are_recovered(emulator, tmp_path, step, left_as):
    db = tmp_path / "warehouse.duckdb"
    _connect(db).close()
    script = CRASHING_RUN.format(here=str(Path(__file__).parent), db=str(db), url=emulator.base_url)
    env = {**os.environ, "CLAUDE_BATCH_CRASH_AT": step}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert emulator.received() == []  # died before its first call

    con = duckdb.connect(str(db))
    assert con.execute("SELECT mode, status FROM claude_batch.cb_batches").fetchall() == [("realtime", left_as)]
    assert _run_once(con, emulator.client(), pack_size=1) == ALL_SUCCEEDED
    assert con.execute("SELECT count(*) FROM claude_batch.cb_batches WHERE status = 'abandoned'").fetchall() == [(1,)]
