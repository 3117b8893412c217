#!/usr/bin/env python
"""No-op incremental run benchmark (issues 5 and 13): a `dbt run` of a classifier with nothing new and
nothing ended, against a plain `dbt run` of the same DAG (same source, same incremental Python model
shape, no classification), both through dbt's CLI runner in this process, alternated.

Two workloads, each in its own project and DuckDB file:
- ``short``: ``--rows`` (20,000) short texts (``review <i>: it works, I like it``);
- ``long``: ``--long-rows`` (1,000,000) W1 rows (``workloads.w1_rows``: 15 % duplicates), each text
  repeated to ``--long-chars`` (500) characters, the shape of issue 13's real messages.

For each: the classifier is run until every row is classified (the emulator, in this process, answers
at once), then ``--repeats`` no-op runs of each model, alternated. Figures per workload: the model's own
time (dbt's ``execution_time`` of the model node: what `dbt run`'s log shows for the model), and the
whole `dbt run` wall time; medians, and the classifier's over the plain model's.

    python bench/noop_run.py [--rows 20000] [--long-rows 1000000] [--long-chars 500] [--repeats 5]
                             [--workloads short,long]

The first no-op run after the classifying runs compares every row and marks the table; the later
ones find the mark and skip the scan and the comparison (``noop.py``): ``first_noop_over_plain`` shows
the first, the medians mostly the later ones.

Last line: JSON with every figure; ``noop_over_plain`` is the short workload's whole-run ratio (issue 5,
target <= 1.5), ``long_model_noop_over_plain`` the long workload's model-time ratio (issue 13, target <= 2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from dbt.cli.main import dbtRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python_udfs"))

import workloads  # noqa: E402

MODEL_CLASSIFIED = '''
from claude_batch import classify


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert")
    return classify(
        dbt, session, source=dbt.source("app", "reviews"), key="id", text="body",
        labels={"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"},
        instructions="Classify the sentiment of each review.",
    )
'''

MODEL_PLAIN = '''
def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert")
    src = dbt.source("app", "reviews")
    if dbt.is_incremental:
        # the same anti-join shape an incremental model does: rows not yet in this table
        return session.sql(f"SELECT s.id, s.body FROM ({src.sql_query()}) s "
                           f"WHERE s.id NOT IN (SELECT id FROM {dbt.this})")
    return src
'''


def make_project(tmp: Path) -> None:
    (tmp / "models").mkdir(parents=True)
    (tmp / "dbt_project.yml").write_text(
        "name: noop_bench\nversion: '1.0'\nconfig-version: 2\nprofile: noop_bench\nmodel-paths: [models]\n"
        "models:\n  noop_bench:\n    +meta:\n      claude: {pack_size: 50, preflight: never}\n"
    )
    (tmp / "profiles.yml").write_text(
        f"noop_bench:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: '{tmp / 'w.duckdb'}'\n      threads: 1\n"
    )
    (tmp / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: app\n    schema: app\n    tables: [{name: reviews}]\n"
    )
    (tmp / "models" / "classified.py").write_text(MODEL_CLASSIFIED)
    (tmp / "models" / "plain.py").write_text(MODEL_PLAIN)


def short_source(db: Path, rows: int) -> None:
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA app")
    ids = list(range(rows))
    con.register("src", pa.table({"id": ids, "body": [f"review {i}: it works, I like it" for i in ids]}))
    con.execute("CREATE TABLE app.reviews AS SELECT * FROM src")
    con.close()


def long_source(db: Path, rows: int, chars: int) -> None:
    """W1 rows, each text repeated (space-separated) and cut to ``chars`` characters."""
    data = workloads.w1_rows(rows, workloads.default_data_dir())
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA app")
    con.register("src", pa.table({"id": [r[0] for r in data], "body": [r[1] for r in data]}))
    del data
    con.execute(f"""CREATE TABLE app.reviews AS
        SELECT id, left(repeat(body || ' ', CAST(ceil({chars} / (length(body) + 1)) AS INTEGER) + 1), {chars}) AS body
        FROM src""")
    con.close()


def bench(name: str, tmp: Path, fill, repeats: int) -> dict:
    from claude_batch.emulator import Emulator

    make_project(tmp)
    fill(tmp / "w.duckdb")
    con = duckdb.connect(str(tmp / "w.duckdb"), read_only=True)
    n_rows, avg_chars = con.execute("SELECT count(*), avg(length(body)) FROM app.reviews").fetchone()
    con.close()
    base = ["--project-dir", str(tmp), "--profiles-dir", str(tmp), "--log-path", str(tmp / "logs"),
            "--target-path", str(tmp / "target"), "--quiet"]
    runner = dbtRunner()

    def run(select: str) -> tuple[float, float]:
        t = time.perf_counter()
        result = runner.invoke(["run", "--select", select, *base])
        elapsed = time.perf_counter() - t
        if not result.success:
            raise SystemExit(f"dbt run -s {select} failed: {result.exception}")
        return elapsed, result.result.results[0].execution_time

    def waiting() -> int:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager as manager

        env = manager._ENV  # dbt-duckdb keeps the file open between in-process runs: ask through it
        cur = env.handle().cursor() if env is not None else duckdb.connect(str(tmp / "w.duckdb"))
        return cur.execute("SELECT count(*) FROM main.classified WHERE status IN ('in_flight', 'pending')").fetchone()[0]

    with Emulator(state_dir=tmp / "emulator", processing_seconds=0) as emu:
        os.environ.update(ANTHROPIC_BASE_URL=emu.base_url, ANTHROPIC_API_KEY=emu.api_key,
                          DBT_SEND_ANONYMOUS_USAGE_STATS="false")
        t = time.perf_counter()
        for _ in range(20):  # submit, then collect (until nothing is in flight)
            run("classified")
            if not waiting():
                break
            emu.wait_idle(600)
        setup_s = time.perf_counter() - t
        run("plain")
        received = len(emu.received())
        noop, plain = [], []
        for _ in range(repeats):  # alternate so drift hits both alike
            noop.append(run("classified"))
            plain.append(run("plain"))
        assert len(emu.received()) == received, "a no-op run sent requests"

    def med(samples: list[tuple[float, float]], i: int) -> float:
        return statistics.median(s[i] for s in samples)

    return {
        "rows": n_rows,
        "avg_chars": round(avg_chars, 1),
        "setup_s": round(setup_s, 1),
        "noop_model_s_median": round(med(noop, 1), 3),
        "plain_model_s_median": round(med(plain, 1), 3),
        "model_noop_over_plain": round(med(noop, 1) / med(plain, 1), 3),
        "noop_run_s_median": round(med(noop, 0), 3),
        "plain_run_s_median": round(med(plain, 0), 3),
        "run_noop_over_plain": round(med(noop, 0) / med(plain, 0), 3),
        # The first no-op after the runs that classified compares every row (and marks the table,
        # python_udfs/claude_batch/noop.py); the later ones find the mark. Both are shown.
        "first_noop_model_s": round(noop[0][1], 3),
        "first_noop_over_plain": round(noop[0][1] / med(plain, 1), 3),
        "noop_model_s": [round(s[1], 3) for s in noop],
        "plain_model_s": [round(s[1], 3) for s in plain],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000, help="rows of the short workload")
    ap.add_argument("--long-rows", type=int, default=1_000_000, help="rows of the long workload")
    ap.add_argument("--long-chars", type=int, default=500, help="characters per text of the long workload")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workloads", default="short,long")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cb-noop-"))
    fills = {
        "short": lambda db: short_source(db, args.rows),
        "long": lambda db: long_source(db, args.long_rows, args.long_chars),
    }
    figures: dict = {"repeats": args.repeats}
    for name in args.workloads.split(","):
        got = bench(name, root / name, fills[name], args.repeats)
        figures[name] = got
        print(f"--- {name}: {got['rows']:,} rows, {got['avg_chars']} characters a text on average")
        for key, value in got.items():
            print(f"{key:>30}: {value}")
    if "short" in figures:  # issue 5's figure, as before: whole `dbt run`, short texts
        figures["noop_over_plain"] = figures["short"]["run_noop_over_plain"]
    if "long" in figures:  # issue 13's: the model's own time, long texts
        figures["long_model_noop_over_plain"] = figures["long"]["model_noop_over_plain"]
        figures["target_met"] = figures["long_model_noop_over_plain"] <= 2.0
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
