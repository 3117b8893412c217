"""Concurrency: two runs at once never double-submit.

On a local DuckDB file, DuckDB itself refuses a second process (``IO Error: Could not set lock on
file ... Conflicting lock is held in <python> (PID n)``): the second `dbt run` fails at once and sends
nothing. For shared warehouses, where that file lock does not exist, each classifier run also takes
a lock row (``Warehouse.acquire_lock``): a fresh lock held by another run stops a second run with
``LockedError`` naming the holder; a lock left by a dead process on this host, or older than the
stale limit, is taken over.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import duckdb
import pytest
from claude_batch.emulator import server as emulator_server
from claude_batch.state import StateStore
from claude_batch.warehouse import LockedError, Warehouse
from robust_helpers import failure_text, sent_rows, twice

ROWS = [(i, f"review {i}: I love it, great") for i in range(1, 9)]
VARS = {"cb_pack_size": 2}
DUCKDB_LOCK_ERROR = "Could not set lock on file"


@pytest.fixture
def create_gate(monkeypatch):
    """Holds every batch create inside the emulator until released: the run that gets there first
    keeps the DuckDB file open (its model is running) for as long as the test wants."""
    entered, release = threading.Event(), threading.Event()
    original = emulator_server._Handler._inject_faults

    def gated(self, method, path):
        if method == "POST" and path == "/v1/messages/batches":
            entered.set()
            release.wait(120)
        return original(self, method, path)

    monkeypatch.setattr(emulator_server._Handler, "_inject_faults", gated)
    yield entered, release
    release.set()


def test_two_dbt_runs_on_one_duckdb_file(project, emulator, create_gate):
    entered, release = create_gate
    project.add_reviews(ROWS)
    runs = [project.dbt_popen("run", vars=VARS, name=name) for name in ("a", "b")]  # started together
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (entered.is_set() and any(p.poll() is not None for p in runs)):
            time.sleep(0.2)
        assert entered.is_set(), "no run reached the create call"
        loser = next(p for p in runs if p.poll() is not None)  # exited while the winner is held in create
        winner = next(p for p in runs if p is not loser)
        assert winner.poll() is None
    finally:
        release.set()
    out_loser = loser.communicate(timeout=120)[0]
    out_winner = winner.communicate(timeout=180)[0]
    assert winner.returncode == 0, out_winner[-3000:]
    assert loser.returncode != 0
    assert DUCKDB_LOCK_ERROR in out_loser and "Conflicting lock is held in" in out_loser, out_loser[-3000:]
    assert "(PID %d)" % winner.pid in out_loser  # it names the process holding the file

    project.settle(vars=VARS)
    assert twice(emulator) == {}
    assert set(sent_rows(emulator)) == {t for _, t in ROWS}
    assert {r["status"] for r in project.table().values()} == {"succeeded"}


# ---------------------------------------------------------------------------- our lock row

def state_tables(project) -> None:
    con = duckdb.connect(str(project.db))
    try:
        StateStore(Warehouse(con)).ensure()
    finally:
        con.close()


def hold_lock(project, owner: str, age_s: float = 0) -> None:
    project.sql("INSERT INTO claude_batch.cb_locks VALUES ('review_sentiment', ?, now()::TIMESTAMP - to_seconds(?))",
                [owner, age_s])


def api_calls(emulator) -> int:
    return sum(n for k, n in emulator.stats()["calls"].items() if " /v1/" in k)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_fresh_lock_held_by_another_run_stops_a_run_naming_the_holder(project, emulator):
    project.add_reviews(ROWS)
    state_tables(project)
    holder = "warehouse-host-7:4242:0f1e2d3c4b5a6978"
    hold_lock(project, holder)
    result = project.dbt("run", vars=VARS, expect_ok=False)
    assert not result.success
    text = failure_text(result)
    assert "LockedError" in text and holder in text and "without submitting anything" in text
    assert api_calls(emulator) == 0
    assert project.sql("SELECT owner FROM claude_batch.cb_locks") == [(holder,)]  # not ours to remove


def test_lock_of_a_dead_process_on_this_host_is_taken_over(project, emulator):
    project.add_reviews(ROWS)
    state_tables(project)
    hold_lock(project, f"{socket.gethostname()}:{dead_pid()}:deadbeefdeadbeef")
    project.settle(vars=VARS)
    assert {r["status"] for r in project.table().values()} == {"succeeded"}
    assert project.sql("SELECT count(*) FROM claude_batch.cb_locks")[0][0] == 0


def test_stale_lock_from_another_host_is_taken_over(project, emulator):
    project.add_reviews(ROWS)
    state_tables(project)
    hold_lock(project, "gone-host:1:feedface", age_s=4 * 3600)
    project.settle(vars=VARS)
    assert {r["status"] for r in project.table().values()} == {"succeeded"}


def test_acquire_lock_directly():
    con = duckdb.connect()
    wh = Warehouse(con)
    store = StateStore(wh)
    store.ensure()
    table = store.t["cb_locks"]
    wh.acquire_lock(table, "c", "host-a:1:x", 3600)
    wh.acquire_lock(table, "c", "host-a:1:x", 3600)  # the holder may take it again
    wh.acquire_lock(table, "other", "host-b:2:y", 3600)  # another classifier: its own lock
    with pytest.raises(LockedError) as err:
        wh.acquire_lock(table, "c", "host-b:2:y", 3600)
    assert "host-a:1:x" in str(err.value)
    wh.acquire_lock(table, "c", "host-b:2:y", 0)  # stale (limit 0): taken over
    assert wh.fetchall(f"SELECT owner FROM {table} WHERE classifier = 'c'") == [("host-b:2:y",)]
    wh.release_lock(table, "c", "host-a:1:x")  # not the holder any more: no effect
    assert wh.fetchall(f"SELECT count(*) FROM {table} WHERE classifier = 'c'") == [(1,)]
    wh.release_lock(table, "c", "host-b:2:y")
    assert wh.fetchall(f"SELECT count(*) FROM {table} WHERE classifier = 'c'") == [(0,)]
