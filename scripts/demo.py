#!/usr/bin/env python
"""`make demo`: classify the demo reviews end to end with real `dbt build` runs.

Without ANTHROPIC_API_KEY it starts the bundled emulator (batches take a few seconds) and points the
SDK at it through ANTHROPIC_BASE_URL; with the key exported it uses the real API, same code path.
It runs `dbt build` until no demo row is in flight, then prints the labels and what they cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
DB = REPO / "target" / "demo.duckdb"
MAX_RUNS = int(os.environ.get("CLAUDE_BATCH_DEMO_MAX_RUNS", "20"))
POLL_S = float(os.environ.get("CLAUDE_BATCH_DEMO_POLL_S", "3"))


def query(sql: str) -> list[tuple]:
    con = duckdb.connect(str(DB), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def waiting() -> int:
    return query("SELECT count(*) FROM main.demo_review_sentiment WHERE status IN ('in_flight', 'pending')")[0][0]


def main() -> int:
    env = {**os.environ, "CLAUDE_BATCH_DUCKDB": str(DB), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    emulator = None
    if os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("CLAUDE_BATCH_USE_EMULATOR") != "1":
        print("ANTHROPIC_API_KEY is set: using the real Anthropic API (batches may take minutes).")
    else:
        from claude_batch.emulator import Emulator

        emulator = Emulator(state_dir=REPO / "target" / "emulator", processing_seconds=3).start()
        env.update(ANTHROPIC_BASE_URL=emulator.base_url, ANTHROPIC_API_KEY=emulator.api_key)
        print(f"No ANTHROPIC_API_KEY: using the bundled emulator at {emulator.base_url} (no key, no spend).")
    DB.parent.mkdir(parents=True, exist_ok=True)
    try:
        for run in range(1, MAX_RUNS + 1):
            print(f"\n=== dbt build, run {run} ===", flush=True)
            cmd = [sys.executable, "-m", "dbt.cli.main", "build", "--project-dir", str(REPO), "--profiles-dir",
                   str(REPO), "--vars", json.dumps({"claude_batch_demo": True})]
            proc = subprocess.run(cmd, env=env, cwd=REPO)
            if proc.returncode != 0:
                print("dbt build failed; see the log above.", file=sys.stderr)
                return proc.returncode
            left = waiting()
            if left == 0:
                break
            print(f"{left} row(s) still in flight; next run in {POLL_S:.0f}s", flush=True)
            time.sleep(POLL_S)
        else:
            print(f"Rows are still in flight after {MAX_RUNS} runs; run `make demo` again later.")
    finally:
        if emulator is not None:
            emulator.stop()

    print("\n=== Labels (main.demo_review_sentiment) ===")
    for status, label, n in query(
        "SELECT status, coalesce(label, '-'), count(*) FROM main.demo_review_sentiment GROUP BY ALL ORDER BY 1, 3 DESC"
    ):
        print(f"  {status:<20} {label:<10} {n:>5}")
    billed, naive, texts, requests = query(
        "SELECT coalesce(sum(billed_usd), 0), coalesce(sum(naive_usd), 0), coalesce(sum(items), 0), "
        "coalesce(sum(requests), 0) FROM claude_batch.cb_cost_by_batch WHERE classifier = 'demo_review_sentiment'"
    )[0]
    print("\n=== Cost (claude_batch.cb_cost_by_batch) ===")
    print(f"  {texts} distinct text(s) in {requests} request(s)")
    print(f"  billed ${billed:.6f}; one real-time uncached call per text would have cost ${naive:.6f}")
    if naive:
        print(f"  saved ${naive - billed:.6f} ({(naive - billed) / naive:.0%})")
    print(f"\nQuery it yourself: duckdb {DB.relative_to(REPO)} \"select * from main.demo_review_sentiment\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
