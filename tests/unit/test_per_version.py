"""The result that counts per (version, text): texts with one outcome skip the aggregate; the answer
must be the same as picking from every outcome (a success if there ever was one, else the latest)."""

import random
from datetime import datetime, timedelta

import duckdb
import pytest

from claude_batch.state import StateStore
from claude_batch.warehouse import Warehouse

STATUSES = ["succeeded", "errored", "expired", "missing", "invalid_output", "canceled"]


@pytest.fixture
def store(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    s = StateStore(Warehouse(con))
    s.ensure()
    yield s
    con.close()


def _reference(store, versions):
    """Every outcome ranked in Python: success first, then the highest attempt, then the latest."""
    rows = store.wh.fetch_dicts(f"SELECT rowid AS rid, * FROM {store.t['cb_results']}")
    best: dict[tuple, dict] = {}
    totals: dict[tuple, list] = {}
    for r in rows:
        if versions is not None and r["version"] not in versions:
            continue
        k = (r["version"], r["text_hash"])
        rank = (r["status"] == "succeeded", r["attempt"] or 0, r["collected_at"] or datetime.min)
        if k not in best or rank > best[k][0]:
            best[k] = (rank, r)
        t = totals.setdefault(k, [0, 0.0, 0.0])
        t[0] += 1
        t[1] += r["billed_usd"] or 0.0
        t[2] = max(t[2], r["naive_usd"] or 0.0)
    return {k: (r["rid"], r["status"], r["error_type"], r["attempt"], r["collected_at"], t[0], pytest.approx(t[1]), t[2])
            for k, ((_, r), t) in ((k, (best[k], totals[k])) for k in best)}


@pytest.mark.parametrize("versions", [None, ["v1"], ["v2", "v1"]])
def test_singles_and_retries_pick_the_same_winner_as_every_outcome_ranked(store, versions):
    rng = random.Random(11)
    t0 = datetime(2026, 1, 1)
    rows = []
    for text in range(300):
        for version in ("v1", "v2"):
            # Most texts have one outcome; some were retried, with successes anywhere in the sequence.
            n = 1 if rng.random() < 0.7 else rng.randint(2, 4)
            for attempt in range(1, n + 1):
                status = rng.choice(STATUSES)
                rows.append((version, f"00000000-0000-0000-0000-{text:012d}", status,
                             "api_error" if status == "errored" else None, attempt,
                             t0 + timedelta(minutes=rng.randint(0, 10_000)), rng.random() / 100, rng.random() / 10))
    store.wh.con.executemany(
        f"INSERT INTO {store.t['cb_results']} (version, text_hash, status, error_type, attempt, collected_at, "
        "billed_usd, naive_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    got = {(r[0], str(r[1])): tuple(r[2:]) for r in store.wh.fetchall(store.per_version_sql(versions))}
    want = {(v, str(h)): x for (v, h), x in _reference(store, versions).items()}
    assert got.keys() == want.keys() and len(got) == (600 if versions in (None, ["v2", "v1"]) else 300)
    assert got == want
    several = sum(1 for x in want.values() if x[5] > 1)
    assert 0 < several < len(want)  # both paths were taken
