"""The integration_tests classifiers on both engines, run as their adapters run Python models
(tests/spark/harness.py), against the emulator: the same runs and the same assertions on DuckDB and
on a real local Spark.

End to end, incremental (a second batch of source rows sends only what is new), dedup (a text on
several rows is sent once and its cost shared) and the cost tables (every cost column sums to the bill).
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import duckdb
import pytest

from harness import DuckDBTarget, ModelRunner, SparkTarget

HERE = Path(__file__).resolve().parent
API_KEY = "sk-emulator-spark-marker-7c1d"
REVIEWS = "id INT, body STRING"
TICKETS = "region STRING, `ticket no` INT, subject STRING, body STRING"


@pytest.fixture(params=["duckdb", "spark"])
def target(request, tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    state = f"cb_state_{uuid.uuid4().hex[:8]}"
    if request.param == "duckdb":
        con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        yield DuckDBTarget(con, state)
        con.close()
    else:
        spark = request.getfixturevalue("spark")
        yield SparkTarget(spark, f"analytics_{uuid.uuid4().hex[:8]}", tmp_path / "sources", state)


# ---------------------------------------------------------------------------- shared assertions


def output(target, model: str = "review_sentiment") -> list[dict]:
    return target.rows(f"SELECT * FROM {target.main_table(model)}")


def assert_every_row_explained(target, model: str, source_keys: set, labels: set, *, multi: bool = False) -> None:
    """Every source row with a non-null key is in the table once, with a status; a labelled row's
    labels are in the set."""
    rows = output(target, model)
    key = (lambda r: (r["region"], r["ticket no"])) if model == "ticket_topics" else (lambda r: r["id"])
    got = [key(r) for r in rows]
    assert sorted(got, key=repr) == sorted(source_keys, key=repr)
    for r in rows:
        assert r["status"], r
        if r["status"] == "succeeded":
            assert r["labels"] and set(r["labels"]) <= labels, r
            if not multi:
                assert r["label"] in labels


def assert_costs_sum_to_bill(target, model: str = "review_sentiment") -> float:
    """cost_usd over the table, the requests' bill, the batches' and the runs' cost views agree."""
    billed = target.rows(f"SELECT sum(billed_usd) AS b FROM {target.state('cb_requests')}")[0]["b"] or 0.0
    by_batch = target.rows(f"SELECT sum(billed_usd) AS b FROM {target.state('cb_cost_by_batch')}")[0]["b"] or 0.0
    by_run = target.rows(f"SELECT sum(billed_usd) AS b FROM {target.state('cb_cost_by_run')}")[0]["b"] or 0.0
    rows = target.rows(f"SELECT sum(cost_usd) AS c FROM {target.main_table(model)}")[0]["c"] or 0.0
    assert billed > 0
    for other in (by_batch, by_run, rows):
        assert math.isclose(other, billed, rel_tol=1e-9), (billed, by_batch, by_run, rows)
    return billed


def n_batches(emulator) -> int:
    return len(list(emulator.client().messages.batches.list(limit=100)))


def items_sent(target) -> int:
    return target.rows(f"SELECT count(*) AS n FROM {target.state('cb_request_items')}")[0]["n"]


# ---------------------------------------------------------------------------- tests


# Six runs of a classifier: on a local Spark each is a few dozen Spark jobs (12 minutes measured on a
# 2-core machine shared by five jobs), past the suite's 10-minute default.
@pytest.mark.timeout(1800)
def test_review_sentiment_end_to_end_incremental_dedup(target):
    reviews = [(1, "I love it"), (2, "It broke after a day"), (3, "I love it"), (4, "   "), (5, None),
               (6, "Meh, it is fine"), (7, "Refund please, terrible")]
    target.add_source_rows("reviews", REVIEWS, reviews)
    runner = ModelRunner(target, {"mode": "batch"})
    runner.run("review_sentiment")  # submits
    first = {r["id"]: r for r in output(target)}
    assert {first[i]["status"] for i in (1, 2, 3, 6, 7)} == {"in_flight"}
    assert first[4]["status"] == first[5]["status"] == "skipped_empty_text"
    assert items_sent(target) == 4  # five texts, "I love it" twice: sent once

    runner.run("review_sentiment")  # collects
    got = {r["id"]: r for r in output(target)}
    assert {got[i]["status"] for i in (1, 2, 3, 6, 7)} == {"succeeded"}
    assert got[1]["label"] == got[3]["label"] and got[1]["cost_usd"] == pytest.approx(got[3]["cost_usd"])
    assert_every_row_explained(target, "review_sentiment", {r[0] for r in reviews}, {"positive", "negative", "neutral"})
    billed = assert_costs_sum_to_bill(target)

    # Incremental: new rows, one with a text already classified: only the new text is sent.
    target.add_source_rows("reviews", REVIEWS, [(8, "It broke after a day"), (9, "Best purchase this year")])
    runner.run("review_sentiment")
    assert items_sent(target) == 5
    runner.run("review_sentiment")
    got = {r["id"]: r for r in output(target)}
    assert got[8]["status"] == got[9]["status"] == "succeeded" and got[8]["label"] == got[2]["label"]
    assert_every_row_explained(target, "review_sentiment", set(range(1, 10)), {"positive", "negative", "neutral"})
    assert assert_costs_sum_to_bill(target) > billed

    # Nothing new: nothing sent, nothing changes.
    runner.run("review_sentiment")
    assert items_sent(target) == 5
    assert target.rows(f"SELECT count(*) AS n FROM {target.state('cb_batches')}")[0]["n"] == 2
