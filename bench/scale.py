#!/usr/bin/env python
"""Scale benchmark (issues 5 and 14): N rows (default 1,000,000 W1 texts) through gather → submit →
emulator → collect → table, against DuckDB writing and reading the same JSONL natively, in one process.

The emulator runs as a separate process (as the real API would be remote), so this process's peak RSS
is the pipeline's own. Above ``--reference-rows`` (default 1,000,000) a reference pass at that size runs
first in the same process, so the time per row at N is compared with it side by side (issue 14: linear
at 10M rows). Figures, per size:
- per-stage time: run 1 (a first run: gather, then submit with pack, bodies, intents and creates),
  the wait for the emulator (not ours), run 2 (the collect step; then gather and finish) and the
  model's output table;
- DuckDB anchors: COPY of the requests' rows to JSONL (what submit writes) and read_json of one
  result line per row shaped like the API's (what collect reads, unpacked);
- ingest_over_duckdb: our collect step (download, parse, write the state and cb_results) / DuckDB
  read_json of the result lines into a table; run2_and_table_over_duckdb: all of run 2 plus the table;
- end_to_end_over_duckdb: our own time (run 1 + run 2 + output table, excluding the wait for the
  emulator) / (DuckDB write + read);
- peak_rss_mb: this process's peak resident set during the pipeline passes of that size (the kernel's
  high-water mark, reset before each size; the anchors are not counted), with DuckDB's memory_limit at
  ``--duckdb-memory``; rows_per_s (source rows / our own time);
- with a reference size: per_row_ratio (our time per row at N over that at the reference size), and
  the same ratio per stage.
Each size runs ``--repeats`` passes (default 3 up to 1M rows, else 1), each on a fresh copy of the
source, alternating with one sample of each anchor; every time figure is the median of its samples
(all printed under ``samples_s``). Last line: one JSON object.

    python bench/scale.py [--rows 1000000] [--reference-rows 1000000] [--pack-size 50] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python_udfs"))

from claude_batch import config as config_mod  # noqa: E402
from claude_batch import batches, lifecycle, logs, pipeline  # noqa: E402
import workloads  # noqa: E402
from claude_batch.warehouse import DuckDBWarehouse  # noqa: E402

# Our stages, in the order they run (the emulator's wait between run 1 and run 2 is not ours).
STAGES = ("run1_gather_s", "run1_submit_s", "run2_collect_s", "run2_gather_s", "output_table_s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb() -> float:
    """This process's peak RSS since the last ``reset_peak_rss`` (Linux VmHWM), else since it started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux: 5 > /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux: the peak is then the process's whole life


def wait_ready(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_emulator/stats", timeout=1).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("emulator did not start")


def make_source(path: Path, n_rows: int) -> int:
    rows = workloads.w1_rows(n_rows, workloads.default_data_dir())
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA app")
    con.register("src", pa.table({"id": [r[0] for r in rows], "body": [r[1] for r in rows]}))
    con.execute("CREATE TABLE app.reviews AS SELECT * FROM src")
    con.close()
    return 0


class Clock:
    """Times consecutive stages of a pass."""

    def __init__(self, got: dict):
        self.got, self.t = got, time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.got[stage] = now - self.t
        self.t = now


def run_pipeline(tmp: Path, source: Path, tag: str, args: argparse.Namespace, cfg) -> tuple[dict, duckdb.DuckDBPyConnection, list[str]]:
    """One measured pass on a fresh copy of the source: run 1, the wait, run 2, the table; each run
    step by step as ``pipeline.run`` does it, so every stage is timed on its own."""
    db = tmp / f"warehouse-{tag}.duckdb"
    shutil.copy(source, db)
    con = duckdb.connect(str(db))
    # A lean nightly job's DuckDB: it spills to disk past this instead of growing.
    con.execute(f"SET memory_limit = '{args.duckdb_memory}'")
    wh = DuckDBWarehouse(con, state_schema="claude_batch")
    got: dict = {}
    client = pipeline.make_client()

    def steps(clock: Clock, first: str, second: str) -> pipeline.Pipeline:
        lifecycle.check(cfg, lambda: client, logs.warn)
        pipe = pipeline.Pipeline(cfg, wh, "app.reviews", client=client)
        pipe.prepare()
        pipe.lock()
        pipe.reconcile()
        pipe.collect()
        if first == "run2_collect_s":
            clock.lap(first)
        pipe.gather()
        if first == "run1_gather_s":
            clock.lap(first)
        pipe.submit()
        pipe.finish()
        pipe.unlock()
        clock.lap(second)
        return pipe

    clock = Clock(got)
    steps(clock, "run1_gather_s", "run1_submit_s")
    got["rss_after_submit_mb"] = peak_rss_mb()

    t = time.perf_counter()
    ids = [r[0] for r in con.execute("SELECT batch_id FROM claude_batch.cb_batches WHERE batch_id IS NOT NULL AND mode = 'batch'").fetchall()]
    while any(client.messages.batches.retrieve(b).processing_status != "ended" for b in ids):
        time.sleep(0.5)
    got["emulator_processing_s"] = time.perf_counter() - t
    got["batches"] = len(ids)

    clock = Clock(got)
    pipe = steps(clock, "run2_collect_s", "run2_gather_s")
    out = wh.relation(pipe.output_sql(None))  # noqa: F841 - read by name in the SQL below
    con.execute("CREATE TABLE main.w1_sentiment AS SELECT * FROM out")
    clock.lap("output_table_s")
    got["ours_s"] = sum(got[s] for s in STAGES)
    got["statuses"] = dict(con.execute("SELECT status, count(*) FROM main.w1_sentiment GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return got, con, ids


def anchors(con: duckdb.DuckDBPyConnection, tmp: Path, anchor_file: Path, samples: int) -> tuple[list[float], list[float]]:
    """DuckDB natively, same process, same rows. Write: the rows' requests as JSONL (what submit
    sends). Read: one result line per row into a table (what collect reads, unpacked)."""
    writes, reads = [], []
    for _ in range(samples):
        t = time.perf_counter()
        con.execute(f"COPY (SELECT id AS custom_id, body AS text FROM app.reviews) TO '{tmp / 'requests.jsonl'}' (FORMAT json)")
        writes.append(time.perf_counter() - t)
        con.execute("DROP TABLE IF EXISTS anchor")
        t = time.perf_counter()
        con.execute(f"CREATE TABLE anchor AS SELECT * FROM read_json('{anchor_file}', format='newline_delimited', "
                    "columns={'custom_id': 'VARCHAR', 'result': 'JSON'})")
        reads.append(time.perf_counter() - t)
        con.execute("DROP TABLE anchor")
    os.remove(tmp / "requests.jsonl")
    return writes, reads


def make_anchor_file(con: duckdb.DuckDBPyConnection, client, batch_id: str, tmp: Path, tag: str) -> Path:
    """One result line per source row, shaped like the API's unpacked batch results (the issue's
    anchor: "read_json turns 1M result lines into a table"): a real result line of this run, downloaded
    through the API as collect does, with its custom_id and answer replaced, so the bytes are realistic."""
    downloaded = tmp / "results_sample.jsonl"
    batches.download_results(client, batch_id, downloaded)
    sample = con.execute(
        "SELECT result FROM read_json(?, format='newline_delimited', columns={'custom_id': 'VARCHAR', 'result': 'JSON'}) LIMIT 1",
        [str(downloaded)],
    ).fetchall()[0][0]
    os.remove(downloaded)
    sample = json.loads(sample)
    sample["message"]["content"] = [{"type": "text", "text": '{"groups":[{"label":"positive","ids":[1]}]}'}]
    one = json.dumps(sample, separators=(",", ":")).replace("'", "''")
    anchor_file = tmp / f"unpacked_results-{tag}.jsonl"
    con.execute(f"""COPY (SELECT 'r' || id AS custom_id, json('{one}') AS result FROM app.reviews)
                    TO '{anchor_file}' (FORMAT json)""")
    return anchor_file


def measure_size(tmp: Path, n_rows: int, repeats: int, args: argparse.Namespace, cfg) -> dict:
    """Every figure of one size: ``repeats`` passes alternating with the anchors, medians."""
    t = time.perf_counter()
    # The source table is made in a child process, so this process's peak RSS is the pipeline's.
    source = tmp / f"source-{n_rows}.duckdb"
    subprocess.run([sys.executable, __file__, "--make-source", str(source), "--rows", str(n_rows)], check=True)
    figures: dict = {"rows": n_rows, "repeats": repeats, "load_source_s": round(time.perf_counter() - t, 3)}
    # Passes and anchors alternate, so a slow spell of a shared machine lands on both sides; on a
    # small machine one timing of a second or two varies by a third, more than our changes do.
    passes: list[dict] = []
    writes: list[float] = []
    reads: list[float] = []
    anchor_file = None
    peak = 0.0
    for n in range(repeats):
        reset_peak_rss()
        got, con, ids = run_pipeline(tmp, source, f"{n_rows}-{n}", args, cfg)
        peak = max(peak, peak_rss_mb())
        passes.append(got)
        if anchor_file is None:
            anchor_file = make_anchor_file(con, pipeline.make_client(), ids[0], tmp, str(n_rows))
        w, r = anchors(con, tmp, anchor_file, samples=1 if repeats >= 3 else 3)
        writes += w
        reads += r
        con.close()
        os.remove(tmp / f"warehouse-{n_rows}-{n}.duckdb")
    figures["anchor_results_mb"] = round(os.path.getsize(anchor_file) / 1e6, 1)
    os.remove(anchor_file)
    os.remove(source)

    def med(key: str) -> float:
        return statistics.median(p[key] for p in passes)

    for key in (*STAGES, "emulator_processing_s", "ours_s"):
        figures[key] = med(key)
    figures["run2_s"] = med("run2_collect_s") + med("run2_gather_s")
    figures["batches"] = passes[0]["batches"]
    figures["statuses"] = passes[-1]["statuses"]
    figures["rss_after_submit_mb"] = round(passes[0]["rss_after_submit_mb"], 1)
    figures["peak_rss_mb"] = round(peak, 1)
    figures["duckdb_write_jsonl_s"] = statistics.median(writes)
    figures["duckdb_read_results_s"] = statistics.median(reads)
    figures["samples_s"] = {
        "ours": [round(p["ours_s"], 3) for p in passes], "collect": [round(p["run2_collect_s"], 3) for p in passes],
        "duckdb_write": [round(x, 3) for x in writes], "duckdb_read": [round(x, 3) for x in reads],
    }
    read_s = figures["duckdb_read_results_s"]
    # Ingest = results into the warehouse's result tables (download, parse, state, cb_results);
    # run 2 as a whole (with the source scan, the anti-join and the model's table) is also shown.
    figures["ingest_over_duckdb"] = round(figures["run2_collect_s"] / read_s, 2) if read_s else None
    figures["run2_and_table_over_duckdb"] = round((figures["run2_s"] + figures["output_table_s"]) / read_s, 2) if read_s else None
    figures["end_to_end_over_duckdb"] = round(figures["ours_s"] / (figures["duckdb_write_jsonl_s"] + read_s), 2)
    figures["rows_per_s"] = round(n_rows / figures["ours_s"])
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}



def start_emulator(state_dir: Path) -> tuple[subprocess.Popen, str]:
    """The bundled emulator in a process of its own (answers at once); the caller waits with wait_ready."""
    port = free_port()
    emu = subprocess.Popen(
        [sys.executable, "-m", "claude_batch.emulator", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", str(state_dir), "--processing-seconds", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO / "python_udfs")},
    )
    return emu, f"http://127.0.0.1:{port}"

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reference-rows", type=int, default=1_000_000,
                    help="above this size, a pass at this size runs first and time per row is compared with it (0: none)")
    ap.add_argument("--pack-size", type=int, default=50)
    ap.add_argument("--model", default=workloads.W1_MODEL)
    ap.add_argument("--duckdb-memory", default="512MB")
    ap.add_argument("--repeats", type=int, default=None,
                    help="measured passes per size, each on a fresh copy of the source; figures are medians "
                         "(default 3 up to 1M rows, else 1)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (warehouse, emulator state)")
    ap.add_argument("--make-source", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_source:
        return make_source(Path(args.make_source), args.rows)

    data_dir = workloads.default_data_dir()
    if data_dir is None:
        print("W1 data not found (set CLAUDE_BATCH_DATA_DIR)", file=sys.stderr)
        return 2
    sizes = [args.rows]
    if 0 < args.reference_rows < args.rows:
        sizes.insert(0, args.reference_rows)
    tmp = Path(tempfile.mkdtemp(prefix="cb-scale-"))
    emu, base_url = start_emulator(tmp / "emulator")
    per_size: list[dict] = []
    try:
        wait_ready(base_url)
        os.environ["ANTHROPIC_BASE_URL"] = base_url
        os.environ["ANTHROPIC_API_KEY"] = "sk-emulator-bench"
        spec = workloads.w1_spec(args.model)
        cfg = config_mod.build_config(
            "w1_sentiment", {"model": args.model, "pack_size": args.pack_size},
            key="id", text="body", instructions=spec.instructions,
            labels={lab.name: lab.description for lab in spec.labels},
            examples=[(e.text, e.labels[0]) for e in spec.examples],
        )
        for n_rows in sizes:
            repeats = args.repeats if args.repeats is not None else (3 if n_rows <= 1_000_000 else 1)
            per_size.append(measure_size(tmp, n_rows, max(1, repeats), args, cfg))
    finally:
        emu.terminate()
        emu.wait(10)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    figures: dict = {"rows": args.rows, "pack_size": args.pack_size, "duckdb_memory_limit": args.duckdb_memory}
    main_size = per_size[-1]
    figures.update({k: v for k, v in main_size.items() if k != "rows"})
    if len(per_size) > 1:
        ref = per_size[0]
        scale = ref["rows"] / main_size["rows"]
        figures["reference"] = ref
        # Time per row at N over time per row at the reference size: 1.0 is linear.
        figures["per_row_ratio"] = round(main_size["ours_s"] * scale / ref["ours_s"], 3)
        figures["per_row_ratio_by_stage"] = {
            s: round(main_size[s] * scale / ref[s], 2) if ref[s] else None for s in STAGES}

    # Side by side: one column per size, then the per-row ratio.
    head = f"{'':>28}  " + "  ".join(f"{p['rows']:>12,}" for p in per_size)
    if len(per_size) > 1:
        head += f"  {'per-row ratio':>13}"
    print(head)
    shown = (*STAGES, "ours_s", "emulator_processing_s", "duckdb_write_jsonl_s", "duckdb_read_results_s",
             "end_to_end_over_duckdb", "ingest_over_duckdb", "run2_and_table_over_duckdb", "peak_rss_mb",
             "rss_after_submit_mb", "rows_per_s", "batches")
    for key in shown:
        line = f"{key:>28}: " + "  ".join(f"{p[key]:>12}" for p in per_size)
        if len(per_size) > 1 and (key in STAGES or key == "ours_s"):
            line += f"  {figures['per_row_ratio'] if key == 'ours_s' else figures['per_row_ratio_by_stage'][key]:>13}"
        print(line)
    for key in ("statuses", "samples_s"):
        for p in per_size:
            print(f"{key:>28}: [{p['rows']:,}] {p[key]}")
    if "per_row_ratio" in figures:
        print(f"{'per_row_ratio':>28}: {figures['per_row_ratio']} (our time per row at {args.rows:,} over "
              f"that at {per_size[0]['rows']:,})")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
