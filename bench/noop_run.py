#!/usr/bin/env python
"""No-op incremental run benchmark (issue 5): a `dbt run` of a classifier with nothing new and
nothing ended, against a plain `dbt run` of the same DAG (same source, same incremental Python
model shape, no classification), both through dbt's CLI runner in this process, alternated.

    python bench/noop_run.py [--rows 20000] [--repeats 5]

Last line: JSON with the medians and `noop_over_plain` (target <= 1.5).
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

MODEL_CLASSIFIED = '''
from claude_batch import classify


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert")
    return classify(
        dbt, session, source=dbt.source("app", "reviews"), key="id", text="body",
        labels={"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"},
        instructions="Classify the sentiment of each review.", options=dbt.config.get("claude"),
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from claude_batch.emulator import Emulator

    tmp = Path(tempfile.mkdtemp(prefix="cb-noop-"))
    (tmp / "models").mkdir()
    (tmp / "dbt_project.yml").write_text(
        "name: noop_bench\nversion: '1.0'\nconfig-version: 2\nprofile: noop_bench\nmodel-paths: [models]\n"
        "models:\n  noop_bench:\n    +claude: {model: claude-haiku-4-5, pack_size: 50}\n"
    )
    (tmp / "profiles.yml").write_text(
        f"noop_bench:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: '{tmp / 'w.duckdb'}'\n      threads: 1\n"
    )
    (tmp / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: app\n    schema: app\n    tables: [{name: reviews}]\n"
    )
    (tmp / "models" / "classified.py").write_text(MODEL_CLASSIFIED)
    (tmp / "models" / "plain.py").write_text(MODEL_PLAIN)
    con = duckdb.connect(str(tmp / "w.duckdb"))
    con.execute("CREATE SCHEMA app")
    ids = list(range(args.rows))
    con.register("src", pa.table({"id": ids, "body": [f"review {i}: it works, I like it" for i in ids]}))
    con.execute("CREATE TABLE app.reviews AS SELECT * FROM src")
    con.close()

    base = ["--project-dir", str(tmp), "--profiles-dir", str(tmp), "--log-path", str(tmp / "logs"),
            "--target-path", str(tmp / "target"), "--quiet"]
    runner = dbtRunner()

    def run(select: str) -> float:
        t = time.perf_counter()
        result = runner.invoke(["run", "--select", select, *base])
        elapsed = time.perf_counter() - t
        if not result.success:
            raise SystemExit(f"dbt run -s {select} failed: {result.exception}")
        return elapsed

    with Emulator(state_dir=tmp / "emulator", processing_seconds=0) as emu:
        os.environ.update(ANTHROPIC_BASE_URL=emu.base_url, ANTHROPIC_API_KEY=emu.api_key,
                          DBT_SEND_ANONYMOUS_USAGE_STATS="false")
        run("classified")  # submit
        run("classified")  # collect: everything classified now
        run("plain")
        received = len(emu.received())
        noop, plain = [], []
        for _ in range(args.repeats):  # alternate so drift hits both alike
            noop.append(run("classified"))
            plain.append(run("plain"))
        assert len(emu.received()) == received, "a no-op run sent requests"
    figures = {
        "rows": args.rows,
        "repeats": args.repeats,
        "noop_classifier_run_s_median": round(statistics.median(noop), 3),
        "plain_run_s_median": round(statistics.median(plain), 3),
        "noop_over_plain": round(statistics.median(noop) / statistics.median(plain), 3),
    }
    for key, value in figures.items():
        print(f"{key:>30}: {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
