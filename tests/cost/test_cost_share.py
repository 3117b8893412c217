"""Issue 13, point 1, at the level of the output query: which rows an incremental run returns, so
that `cost_usd` over the model's table stays equal to the bill without rewriting unchanged rows.

``Incremental`` does what dbt's delete+insert does with the output of ``pipeline.run``: on the first
run it creates the table, afterwards it passes the table as ``this_sql``, deletes the returned keys
and inserts the returned rows. So the number of rows a run returns is visible here.
"""

from __future__ import annotations

import pytest

from claude_batch import pipeline
from claude_batch.warehouse import Warehouse
from cost_helpers import classifier, reviews

TABLE = "main.review_sentiment"


class Incremental:
    def __init__(self, runs):
        self.runs = runs
        self.returned: list[int] = []  # rows each run returned (what dbt would merge)

    def run(self, cfg, table: str = TABLE) -> dict[int, dict]:
        con = self.runs.connect()
        try:
            schema, _, name = table.partition(".")
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                                 "AND table_name = ?", [schema, name]).fetchone()[0]
            rel = pipeline.run(cfg, Warehouse(con), "app.reviews", this_sql=table if exists else None,
                               client=self.runs.client)
            con.execute(f"CREATE OR REPLACE TEMP TABLE returned AS SELECT * FROM ({rel.sql_query()}) o")
            self.returned.append(con.execute("SELECT count(*) FROM returned").fetchone()[0])
            if exists:
                con.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM returned)")
                con.execute(f"INSERT INTO {table} SELECT * FROM returned")
            else:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM returned")
            cur = con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            out = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
        finally:
            con.close()
        assert self.runs.emulator.wait_idle(60)
        return out


def billed(runs, name: str = "review_sentiment") -> float:
    return runs.sql("SELECT coalesce(sum(billed_usd), 0) FROM claude_batch.cb_requests WHERE classifier = ?",
                    [name])[0][0]


def test_no_op_returns_nothing_and_a_new_duplicate_returns_only_its_texts_rows(runs, emulator):
    rows = reviews(60, distinct=40)  # 20 texts on two rows each
    runs.add(rows)
    inc = Incremental(runs)
    cfg = classifier(pack_size=10)
    inc.run(cfg)
    out = inc.run(cfg)
    assert {r["status"] for r in out.values()} == {"succeeded"}
    assert inc.returned == [60, 60]  # created; then every row got its label
    assert sum(r["cost_usd"] for r in out.values()) == pytest.approx(billed(runs), rel=1e-9)

    inc.run(cfg)
    inc.run(cfg)
    assert inc.returned[2:] == [0, 0]  # a no-op run rewrites nothing (the nightly case)

    # A new row with a text two rows already carry: those two rows' shares change, nothing else.
    text = rows[0][1]
    runs.add([(1000, text)])
    out = inc.run(cfg)
    assert inc.returned[-1] == 3
    assert sent_nothing_new(emulator, 40)
    shares = {out[k]["cost_usd"] for k, t in [*rows, (1000, text)] if t == text}
    assert len(shares) == 1
    assert sum(r["cost_usd"] for r in out.values()) == pytest.approx(billed(runs), rel=1e-9)
    inc.run(cfg)
    assert inc.returned[-1] == 0


def sent_nothing_new(emulator, texts: int) -> bool:
    return sum(len(e["rows"]) for e in emulator.received() if e.get("batch") not in (None, "messages")) == texts


def test_a_twin_classifier_that_reused_every_result_was_billed_nothing(runs, emulator):
    """Results are shared by version, so an identical classifier sends nothing: its rows cost nothing,
    and each table sums to what its own classifier was billed."""
    runs.add(reviews(30, distinct=20))
    first = classifier("review_sentiment")
    _, out = runs.settle(first)
    assert sum(r["cost_usd"] for r in out.values()) == pytest.approx(billed(runs), rel=1e-9)
    twin = runs.run(classifier("review_sentiment_copy"))
    assert {r["status"] for r in twin.values()} == {"succeeded"}
    assert billed(runs, "review_sentiment_copy") == 0
    assert sum(r["cost_usd"] or 0 for r in twin.values()) == 0
