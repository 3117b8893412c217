#!/usr/bin/env python
"""Spark scale benchmark (issue 16): N W1 rows (default 1,000,000) through the Spark engine on a local
SparkSession, and the same rows through the DuckDB engine, side by side in one process, against the
emulator (a separate process, as the API would be remote).

Each engine runs the classifier twice, as two nightly dbt runs would: run 1 gathers and submits
(bodies rendered by the engine, streamed to the API), then the emulator processes the batches (not
counted), then run 2 collects (the results file parsed by the engine itself) and the model's table is
written. Figures per engine: run 1, run 2 with the table, their sum (``ours_s``) and
``rows_per_s`` = rows / ours_s; then ``spark_over_duckdb`` = Spark's ours_s / DuckDB's (above 1:
Spark is slower here). A local Spark on one small machine pays a JVM, a job per statement and Parquet
rewrites of the state tables for no parallelism in return; docs/scale-out.md says what changes on a
cluster. Last line: one JSON object.

    python bench/spark_scale.py [--rows 1000000] [--pack-size 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python_udfs"))
sys.path.insert(0, str(REPO / "bench"))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from claude_batch import config as config_mod  # noqa: E402
from claude_batch import pipeline  # noqa: E402
import workloads  # noqa: E402
from claude_batch.warehouse import Warehouse  # noqa: E402
from scale import start_emulator, wait_ready  # noqa: E402


def local_spark(warehouse_dir: Path, cores: int):
    """A local SparkSession sized for this machine (what ``spark-submit --master local[n]`` gives)."""
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{cores}]").appName("claude-batch-spark-scale")
             .config("spark.sql.shuffle.partitions", str(max(2, cores * 2)))
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "2g")
             .config("spark.sql.warehouse.dir", str(warehouse_dir))
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def wait_for_batches(client, ids: list[str]) -> float:
    t = time.perf_counter()
    while any(client.messages.batches.retrieve(b).processing_status != "ended" for b in ids):
        time.sleep(0.5)
    return time.perf_counter() - t


def run_engine(name: str, wh, source_sql: str, cfg, write_table) -> dict:
    """Two runs and the model's table; the times of each."""
    got: dict = {}
    t = time.perf_counter()
    pipeline.run(cfg, wh, source_sql)  # run 1: gather + submit
    got["run1_gather_submit_s"] = time.perf_counter() - t
    ids = [r[0] for r in wh.fetchall(f"SELECT batch_id FROM {wh.state_table('cb_batches')} WHERE batch_id IS NOT NULL")]
    got["batches"] = len(ids)
    got["emulator_processing_s"] = wait_for_batches(pipeline.make_client(), ids)
    t = time.perf_counter()
    out = pipeline.run(cfg, wh, source_sql)  # run 2: collect (+ nothing left to gather)
    write_table(out)
    got["run2_and_table_s"] = time.perf_counter() - t
    got["ours_s"] = got["run1_gather_submit_s"] + got["run2_and_table_s"]
    statuses = wh.fetchall(f"SELECT status, count(*) FROM {wh.state_table('cb_results')} GROUP BY status")
    got["result_statuses"] = dict(sorted(statuses))
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in got.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pack-size", type=int, default=50)
    ap.add_argument("--model", default=workloads.W1_MODEL)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="local[n] for Spark")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    data_dir = workloads.default_data_dir()
    if data_dir is None:
        print("W1 data not found (set CLAUDE_BATCH_DATA_DIR)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="cb-spark-scale-"))
    emu, base_url = start_emulator(tmp / "emulator")
    figures: dict = {"rows": args.rows, "pack_size": args.pack_size, "spark_cores": args.cores}
    spark = None
    try:
        wait_ready(base_url)
        os.environ["ANTHROPIC_BASE_URL"] = base_url
        os.environ["ANTHROPIC_API_KEY"] = "sk-emulator-bench"
        rows = workloads.w1_rows(args.rows, data_dir)
        source = pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "body": [r[1] for r in rows]})
        del rows
        pq.write_table(source, tmp / "reviews.parquet")
        spec = workloads.w1_spec(args.model)

        def cfg_for(state_schema: str):
            return config_mod.build_config(
                "w1_sentiment", {"model": args.model, "pack_size": args.pack_size, "mode": "batch",
                                 "preflight": "never", "state_schema": state_schema},
                key="id", text="body", instructions=spec.instructions,
                labels={lab.name: lab.description for lab in spec.labels},
                examples=[(e.text, e.labels[0]) for e in spec.examples])

        # DuckDB: the embedded default, on a file, as dbt-duckdb runs it.
        con = duckdb.connect(str(tmp / "warehouse.duckdb"))
        con.execute("CREATE SCHEMA app")
        con.execute(f"CREATE TABLE app.reviews AS SELECT * FROM read_parquet('{tmp / 'reviews.parquet'}')")
        duck = run_engine("duckdb", Warehouse(con, state_schema="claude_batch"), "app.reviews", cfg_for("claude_batch"),
                          lambda out: out.create("main.w1_sentiment"))
        figures["duckdb"] = duck
        con.close()

        # Spark: a local session; the source a DataFrame, as dbt.source() gives a Spark model.
        t = time.perf_counter()
        spark = local_spark(tmp / "spark-warehouse", args.cores)
        figures["spark_session_start_s"] = round(time.perf_counter() - t, 3)
        spark.sql("CREATE DATABASE analytics")
        wh = Warehouse(spark, state_schema="claude_batch")
        spark.read.parquet(str(tmp / "reviews.parquet")).createOrReplaceTempView("w1_reviews")
        source_sql = "w1_reviews"

        def write_spark(out) -> None:
            out.write.mode("overwrite").saveAsTable("analytics.w1_sentiment")

        sp = run_engine("spark", wh, source_sql, cfg_for("claude_batch"), write_spark)
        figures["spark"] = sp
        for side, got in (("duckdb", duck), ("spark", sp)):
            figures[f"{side}_rows_per_s"] = round(args.rows / got["ours_s"])
        figures["spark_over_duckdb"] = round(sp["ours_s"] / duck["ours_s"], 2)
        figures["same_results"] = duck["result_statuses"] == sp["result_statuses"]
    finally:
        if spark is not None:
            spark.stop()
        emu.terminate()
        emu.wait(10)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
