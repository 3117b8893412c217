"""Crash suite: `dbt run` SIGKILLed at every named crash point loses nothing and pays once.

For each step in ``crashpoints.STEPS`` a `dbt run` subprocess is started with
``CLAUDE_BATCH_CRASH_AT=<step>`` and must die at that step (return code -SIGKILL, state on disk
showing the window it died in). Normal runs then finish the work. The final table must equal that of
an uninterrupted run on the same data (another project dir, another emulator), and the emulator's own
record must show every text received exactly once: a batch the API did create is found by reconcile,
never resubmitted. The emulator lives in the test process, so it outlives the killed dbt.
"""

from __future__ import annotations

import signal

import pytest
from claude_batch import _crashpoints as crashpoints
from claude_batch.emulator import Emulator
from robust_helpers import CUSTOM_ID_RE, RobustProject, batch_entries, sent_rows, twice

ROWS = [
    (1, "I love it, works perfectly, highly recommend"),
    (2, "Terrible. It broke after two days, I want a refund"),
    (3, "It arrived on Tuesday."),
    (4, "I love it, works perfectly, highly recommend"),  # same text as 1: sent once, fans out
    (5, "Excellent quality, great value"),
    (6, "Worst purchase ever, awful and disappointed"),
    (7, ""),
    (8, None),
    (9, "Great phone, love the screen"),
    (10, "Broke in a week, terrible"),
    (11, "The box was blue."),
    (12, "Fantastic, would recommend it to anyone"),
]
SENDABLE = {text for _, text in ROWS if text}
# 9 distinct texts, 2 per request → 5 requests, 2 per batch → batches of 2, 2 and 1 requests: two
# submissions with the same request count, the hard case for reconcile. Grace 0: an intent that
# never reached the API is abandoned at once.
VARS = {"cb_grace": 0, "cb_pack_size": 2, "cb_max_requests_per_batch": 2}

# When each step is met: on the run that submits, or on the run that collects (after a normal run
# submitted). A new step in crashpoints.STEPS must be placed here (test_every_step_is_covered).
PHASES = {
    "after_intent": ["submit"],
    "after_create": ["submit"],
    "after_submitted": ["submit"],
    "after_download": ["collect"],
    "after_collect_write": ["collect"],
    "before_output": ["submit", "collect"],
}
CASES = [(step, phase) for step in crashpoints.STEPS for phase in PHASES.get(step, ["?"])]


def final(table: dict) -> dict:
    return {k: (r["label"], r["status"]) for k, r in table.items()}


@pytest.fixture(scope="module")
def clean_table(tmp_path_factory, dbt_deps) -> dict:
    """The same rows classified by uninterrupted runs (own project dir, own emulator)."""
    root = tmp_path_factory.mktemp("clean")
    with Emulator(state_dir=root / "emulator-state", processing_seconds=0) as emu:
        clean = RobustProject(root, emu.base_url)
        clean.add_reviews(ROWS)
        clean.settle(vars=VARS)
        assert not twice(emu)
        table = final(clean.table())
    assert {status for _, status in table.values()} == {"succeeded", "skipped_empty_text"}
    return table


def test_every_step_is_covered():
    assert set(PHASES) == set(crashpoints.STEPS), "place every crash point in PHASES"


def crash(project: RobustProject, step: str, **kwargs):
    # TMPDIR inside the test dir: a run killed after downloading results leaves its temp dir behind.
    tmp = project.tmp / "tmpdir"
    tmp.mkdir(exist_ok=True)
    proc = project.dbt_cli("run", vars=VARS, env={crashpoints.CRASH_ENV: step, "TMPDIR": str(tmp)}, **kwargs)
    assert proc.returncode == -signal.SIGKILL, (
        f"dbt run with {crashpoints.CRASH_ENV}={step} should have been killed, got {proc.returncode}:\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def batches(project: RobustProject) -> list[dict]:
    return project.dicts("SELECT * FROM claude_batch.cb_batches ORDER BY intent_at")


def check_died_in_window(project: RobustProject, emulator, step: str, phase: str) -> None:
    """The state on disk shows the crash happened exactly where the step says."""
    subs = batches(project)
    n_results = project.sql("SELECT count(*) FROM claude_batch.cb_results")[0][0]
    if step == "after_intent":
        assert subs and all(s["status"] == "submitting" and s["batch_id"] is None for s in subs)
        assert batch_entries(emulator) == []  # nothing reached the API
    elif step == "after_create":
        assert subs and all(s["status"] == "submitting" and s["batch_id"] is None for s in subs)
        assert batch_entries(emulator), "the API should hold at least the batch whose answer was lost"
    elif step == "after_submitted":
        assert any(s["batch_id"] for s in subs)
    elif step == "after_download":
        assert any(s["status"] == "ended" and s["collected_at"] is None for s in subs)
        assert n_results == 0  # downloaded, nothing written
        assert list((project.tmp / "tmpdir").glob("claude_batch_*/*.jsonl"))  # left behind by SIGKILL
    elif step == "after_collect_write":
        assert any(s["status"] == "collected" for s in subs) and n_results > 0
        # dbt never merged this run's output: the table still shows run 1's view
        assert {r["status"] for r in project.table().values()} >= {"in_flight"}
    elif step == "before_output" and phase == "submit":
        assert all(s["batch_id"] for s in subs)
        assert not project.exists("main.review_sentiment")
    elif step == "before_output" and phase == "collect":
        assert n_results > 0 and all(s["status"] not in ("submitting", "in_progress") for s in subs)
        assert {r["status"] for r in project.table().values()} >= {"in_flight"}
    else:  # pragma: no cover - a step added without a check
        raise AssertionError(f"no window check for {step}")


@pytest.mark.parametrize("step,phase", CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_crash_then_recover(project, emulator, clean_table, step, phase):
    project.add_reviews(ROWS)
    if phase == "collect":
        project.dbt("run", vars=VARS)  # submits; the emulator finishes the batches at once
        assert emulator.wait_idle(30)
    crash(project, step)
    check_died_in_window(project, emulator, step, phase)
    if step != "before_output":  # (before_output comes after the lock is released)
        locks = project.sql("SELECT owner FROM claude_batch.cb_locks")
        assert locks, "the killed run's lock row stays behind (taken over below: its PID is dead)"

    emulator.wait_idle(30)
    project.settle(vars=VARS)

    assert final(project.table()) == clean_table
    assert twice(emulator) == {}, "a text was submitted twice"
    assert set(sent_rows(emulator)) == SENDABLE
    assert all(CUSTOM_ID_RE.match(e["custom_id"]) for e in batch_entries(emulator))
    # Every batch the API holds is known to the state (none orphaned and billed unseen).
    ours = {b for (b,) in project.sql("SELECT batch_id FROM claude_batch.cb_batches WHERE batch_id IS NOT NULL")}
    assert {e["batch"] for e in batch_entries(emulator)} <= ours
    assert project.sql("SELECT count(*) FROM claude_batch.cb_locks")[0][0] == 0


def test_created_batch_still_processing_is_waited_for_not_resubmitted(project, emulator, clean_table):
    """after_create while the API is still working on the batches: reconcile adopts or waits, even
    with grace 0, and never abandons a batch that exists (two same-size candidates: it waits)."""
    project.add_reviews(ROWS)
    emulator.pause_worker()
    crash(project, "after_create")
    project.dbt("run", vars=VARS)  # reconcile sees in-progress candidates only
    subs = batches(project)
    assert not any(s["status"] == "abandoned" and s["batch_id"] is None
                   and any(e["custom_id"].startswith(s["submission_key"]) for e in batch_entries(emulator))
                   for s in subs), "a submission whose batch exists was abandoned"
    assert twice(emulator) == {}
    emulator.resume_worker()
    assert emulator.wait_idle(30)
    project.settle(vars=VARS)
    assert final(project.table()) == clean_table
    assert twice(emulator) == {}
    assert set(sent_rows(emulator)) == SENDABLE


def test_two_crashes_in_a_row(project, emulator, clean_table):
    """A crashed run's recovery run is itself killed (after_create, then after_download)."""
    project.add_reviews(ROWS)
    crash(project, "after_create")
    emulator.wait_idle(30)
    crash(project, "after_download")  # reconciles, adopts, dies holding the downloaded results
    project.settle(vars=VARS)
    assert final(project.table()) == clean_table
    assert twice(emulator) == {}
    assert set(sent_rows(emulator)) == SENDABLE


def test_someone_elses_batch_of_the_same_size_is_not_adopted(project, emulator):
    """After an after_intent crash, a batch of the same size that another client of the same
    workspace created meanwhile (still processing) must not be taken for ours: wait until it ends,
    see from its custom_ids that it is not ours, then send our rows (once)."""
    rows = [(1, "I love it"), (2, "awful, it broke"), (3, "It arrived.")]
    vars = {"cb_grace": 0, "cb_max_attempts": 1}  # a wasted attempt would show as a final status
    project.add_reviews(rows)
    crash(project, "after_intent")
    (n_requests,) = project.sql("SELECT request_count FROM claude_batch.cb_batches")[0]
    emulator.pause_worker()
    params = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    foreign = emulator.client(api_key=project.env["ANTHROPIC_API_KEY"]).messages.batches.create(
        requests=[{"custom_id": f"other-team-{i}", "params": params} for i in range(n_requests)])
    project.dbt("run", vars=vars)  # reconcile: the only candidate is still processing
    emulator.resume_worker()
    assert emulator.wait_idle(30)
    project.settle(vars=vars)
    table = project.table()
    assert {r["status"] for r in table.values()} == {"succeeded"}, {
        k: (r["status"], r["error_message"]) for k, r in table.items()}
    assert foreign.id not in {b for (b,) in project.sql("SELECT batch_id FROM claude_batch.cb_batches")}
    assert twice(emulator) == {} and set(sent_rows(emulator)) == {t for _, t in rows}


def test_crash_when_dbt_holds_a_transaction_open(project, emulator, clean_table):
    """With `--no-populate-cache` dbt hands the model a connection inside an open transaction (its
    relation lookups). Each state transition must still be committed before the API call it guards:
    killed after the create, the intent is on disk and the next run finds the batch."""
    project.add_reviews(ROWS)
    crash(project, "after_create", extra=["--no-populate-cache"])
    check_died_in_window(project, emulator, "after_create", "submit")
    emulator.wait_idle(30)
    for _ in range(3):
        project.dbt("run", vars=VARS, extra=["--no-populate-cache"])
    assert project.open_work() == 0
    assert final(project.table()) == clean_table
    assert twice(emulator) == {}


def test_crash_after_create_with_the_api_clock_behind_ours(project, emulator, clean_table):
    """The API stamps created_at with its clock, the intent uses ours: a skew of some minutes (here
    the API is 10 minutes behind) must not hide the batch from reconcile."""
    emulator.advance_clock(-600)
    project.add_reviews(ROWS)
    crash(project, "after_create")
    emulator.wait_idle(30)
    project.settle(vars=VARS)
    assert final(project.table()) == clean_table
    assert twice(emulator) == {}


def test_an_intent_that_never_reached_the_api_is_resolved_at_once(project, emulator, clean_table):
    """after_intent, with the default grace (120 s): the API lists no batch of that size since the
    intent, so the next run gives the intents up at once (rows pending again, no attempt used) and
    sends the rows in that same run, instead of waiting two minutes with a warning on each run."""
    default_grace = {k: v for k, v in VARS.items() if k != "cb_grace"}
    project.add_reviews(ROWS)
    crash(project, "after_intent")
    assert batch_entries(emulator) == []
    path = project.logs / "dbt.log"
    before = path.stat().st_size if path.exists() else 0
    project.dbt("run", vars=default_grace)
    log = path.read_text()[before:]
    assert "is unresolved" not in log, log
    assert "never reached the API" in log
    assert set(sent_rows(emulator)) == SENDABLE  # sent by that run, not two minutes later
    assert {s["status"] for s in batches(project) if s["batch_id"] is None} == {"abandoned"}
    project.settle(vars=default_grace)
    assert final(project.table()) == clean_table
    assert twice(emulator) == {}


@pytest.mark.parametrize("step,phase", [("after_intent", "submit"), ("after_download", "collect")])
def test_a_killed_runs_temp_files_are_removed_by_the_next_run(project, emulator, step, phase):
    """kill -9 runs no cleanup: the killed run's request bodies or downloaded results, and dbt-duckdb's
    compiled model file (tmp*.py), stay in $TMPDIR. The next run removes them (their PID is dead) and
    leaves a live process's folder and a tmp*.py no classifier listed alone."""
    import os
    import re

    from claude_batch import tmpfiles

    project.add_reviews(ROWS)
    if phase == "collect":
        project.dbt("run", vars=VARS)
        assert emulator.wait_idle(30)
    crash(project, step)
    tmp = project.tmp / "tmpdir"
    left = {p.name for p in tmp.iterdir()}
    ours = {n for n in left if n.startswith("claude_batch_bodies" if phase == "submit" else "claude_batch_results")}
    model_files = {n for n in left if re.match(r"^tmp\w+\.py$", n)}
    assert ours and model_files, left
    live = tmp / f"claude_batch_bodies-{tmpfiles._host()}-{os.getpid()}-live"  # this test process: alive
    live.mkdir()
    foreign = tmp / "tmpnotaclassifier.py"  # another model's dbt-duckdb file: nobody listed it
    foreign.write_text("# not ours\n")
    proc = project.dbt_cli("run", vars=VARS, env={"TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stdout[-3000:]
    after = {p.name for p in tmp.iterdir()}
    assert not (after & (ours | model_files)), after
    assert live.is_dir() and foreign.is_file()
    assert not [n for n in after if n.startswith("claude_batch_") and n != live.name], after
