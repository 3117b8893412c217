"""Quality benchmark: W1 with its gold labels, cost beside quality, per pack size and answer format.

    python bench/quality.py [--rows 20000] [--sizes 1,10,25,50,100] [--formats grouped,keyed]
                            [--model claude-haiku-5-5] [--min-agreement 0.98] [--grouped-extra 0.01]

What it does (../shared/reference/cost-model.md, "Cost is only half of it"):

1. W1 rows (``workloads.w1_rows``, as bench/cost.py) and their gold labels: the corpus's label
   column, 1 positive and 0 negative (``workloads.load_w1_gold``; a row made unique with a
   ``(#n)`` suffix keeps its sentence's label).
2. For each answer format and pack size, a fresh DuckDB file and emulator; the emulator is scripted
   to answer every sentence with its gold label (the "truth"), and its error model (docs/emulator.md,
   "Wrong on purpose") is switched on with ``ERRORS`` below; then ``pipeline.run`` (what the dbt
   model runs) pass after pass until nothing is pending, exactly as bench/cost.py runs it.
3. Per configuration: project / floor (project = ``sum(billed_usd)`` of ``cb_requests``, the
   preflight included; floor as bench/cost.py computes it, one floor for every configuration, from
   the labels of the first run), agreement with one row per request (share of rows whose label equals
   the pack-size-1 run's, same format), and accuracy against gold (share of rows whose label is the
   gold one; W1 gold has no neutral, so a neutral answer is wrong).
4. The choice: the cheapest configuration whose agreement with one row per request is at least
   ``--min-agreement`` (98 %). Its last line is JSON with ``pack_size`` and ``answer_format``.

The error model is the emulator's, with the parameters below: made-up sizes with the shape of the
published evidence, not a measurement of Claude (docs/quality.md says where each comes from). So the
figures show the trade-off the model implies, and a sensitivity line shows how the choice moves with
the one parameter the evidence gives no size for (the grouped format's extra error).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_udfs"))

import duckdb  # noqa: E402

from claude_batch import config, pipeline  # noqa: E402
import workloads  # noqa: E402
from claude_batch.emulator import Emulator  # noqa: E402
from claude_batch.warehouse import Warehouse  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_cost", ROOT / "bench" / "cost.py")
bench_cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_cost)

MAX_PASSES = 20
# The emulator's error model for this benchmark (docs/quality.md, "The error model's parameters"):
# - base: one row alone is wrong 5 % of the time on Haiku 5.5, 3 % on Sonnet 5.5 (an assumption of
#   the order of published sentiment accuracy on these sentences; only differences matter here);
# - pack_growth 0.0001 and position_growth 0.0001: at 100 rows a request, +1 point for the pack and
#   +0.5 on average for the place (+1 at the last place), within the 2 points Pipal et al. 2026
#   (arXiv 2604.03684) report for six of eight production models up to 100 items; position matters
#   (Lin et al. 2024, arXiv 2309.00384);
# - grouped_extra 0.01: listing which rows carry each label does worse than one label per row
#   (Wang et al. 2024, arXiv 2406.10786); they give no size we can carry over, so one point is an
#   assumption, and the sensitivity line shows where the choice moves;
# - confusions: a wrong answer takes the other side three times in four, else neutral.
ERRORS = {
    "seed": 1,
    "base_error": 0.05,
    "models": {"claude-haiku-5-5": 0.05, "claude-sonnet-5-5": 0.03},
    "pack_growth": 0.0001,
    "position_growth": 0.0001,
    "grouped_extra": 0.01,
    "confusion": {"positive": {"negative": 3, "neutral": 1}, "negative": {"positive": 3, "neutral": 1}},
}


def w1_config(pack_size: int, answer_format: str, model: str) -> config.ClassifierConfig:
    cfg = config.build_config(
        bench_cost.CLASSIFIER, {"pack_size": pack_size, "answer_format": answer_format},
        key="id", text="body", model=model, instructions=workloads.W1_INSTRUCTIONS,
        labels={label.name: label.description for label in workloads.W1_LABELS},
        examples=[(e.text, e.labels[0]) for e in workloads.W1_EXAMPLES],
    )
    grouped = cfg.spec.answer_format == "grouped"
    assert not grouped or cfg.spec == workloads.w1_spec(model), "the bench classifier drifted from workloads.w1_spec"
    return cfg


def run(rows: list[tuple[int, str]], truth: dict[str, str], errors: dict, pack_size: int, answer_format: str,
        model: str, workdir: Path) -> dict:
    """W1 through pipeline.run with the emulator answering gold + errors; labels and billed dollars."""
    workdir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(workdir / "w1.duckdb"))
    bench_cost.load_rows(con, rows)
    cfg = w1_config(pack_size, answer_format, model)
    started = time.monotonic()
    with Emulator(state_dir=workdir / "emulator", processing_seconds=0) as emu:
        emu.script(truth)
        emu.set_faults(answer_errors=errors)
        client = emu.client()
        for passes in range(1, MAX_PASSES + 1):
            out = pipeline.run(cfg, Warehouse(con), "app.reviews", client=client)
            waiting = con.execute(
                f"SELECT count(*) FILTER (WHERE status IN ('pending', 'in_flight')) FROM ({out.sql_query()})").fetchone()[0]
            if not waiting:
                break
            emu.wait_idle(600)
        else:
            raise RuntimeError(f"rows still pending after {MAX_PASSES} passes")
        labelled = con.execute(f"SELECT id, label, status FROM ({out.sql_query()})").fetchall()
    billed, requests = con.execute(
        "SELECT sum(billed_usd), count(*) FROM claude_batch.cb_requests WHERE status = 'succeeded'").fetchone()
    con.close()
    statuses = {}
    for _, _, status in labelled:
        statuses[status] = statuses.get(status, 0) + 1
    return {"labels": {i: label for i, label, _ in labelled}, "billed_usd": billed, "requests": requests,
            "passes": passes, "statuses": statuses, "seconds": round(time.monotonic() - started, 1)}


def share(rows, predicate) -> float:
    return sum(1 for row in rows if predicate(row)) / len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="W1 rows (default 20000, as bench/cost.py)")
    parser.add_argument("--sizes", default="1,10,25,50,100", help="pack sizes (1 is the reference, always run)")
    parser.add_argument("--formats", default="grouped,keyed", help="answer formats")
    parser.add_argument("--model", default=workloads.W1_MODEL)
    parser.add_argument("--min-agreement", type=float, default=0.98)
    parser.add_argument("--grouped-extra", type=float, default=None, help="override the error model's grouped_extra")
    parser.add_argument("--workdir", default=None, help="keep the DuckDB files and emulator state here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")  # the pipeline's warnings (claude_batch.logs)
    if workloads.default_data_dir() is None:
        print(f"W1 corpus not found: set {workloads.DATA_DIR_ENV}", file=sys.stderr)
        return 2

    errors = dict(ERRORS)
    if args.grouped_extra is not None:
        errors["grouped_extra"] = args.grouped_extra
    sizes = sorted({1, *(int(s) for s in args.sizes.split(",") if s.strip())})
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    rows = workloads.w1_rows(args.rows)
    gold = workloads.load_w1_gold()
    row_gold = {i: workloads.w1_gold_label(gold, text) for i, text in rows}
    truth = {text: row_gold[i] for i, text in rows}
    print(f"W1 with gold labels: {len(rows)} rows, {len(truth)} distinct texts, model {args.model}, batch; "
          f"gold {sum(v == 'positive' for v in row_gold.values())} positive / "
          f"{sum(v == 'negative' for v in row_gold.values())} negative rows")
    print(f"emulator error model (docs/quality.md): {json.dumps(errors, separators=(',', ':'))}")

    tmp = tempfile.TemporaryDirectory(prefix="cb-bench-quality-") if args.workdir is None else None
    base = Path(args.workdir or tmp.name)
    results: dict[tuple[str, int], dict] = {}
    floor = None
    for answer_format in formats:
        for size in sizes:
            got = run(rows, truth, errors, size, answer_format, args.model, base / f"{answer_format}-p{size}")
            if floor is None:  # one floor for every configuration (bench/cost.py's sweep does the same)
                floor = bench_cost.reference_figures(rows, got["labels"], args.model)["floor_usd"]
            reference = results.get((answer_format, 1), got)["labels"]
            got["over_floor"] = got["billed_usd"] / floor
            got["agreement"] = share(rows, lambda r: got["labels"][r[0]] == reference[r[0]])
            got["accuracy"] = share(rows, lambda r: got["labels"][r[0]] == row_gold[r[0]])
            results[(answer_format, size)] = got
            print(f"{answer_format:>7} pack_size {size:>3}: project/floor {got['over_floor']:6.3f}  "
                  f"agreement with pack_size 1 {got['agreement']:7.2%}  accuracy vs gold {got['accuracy']:7.2%}  "
                  f"({got['requests']} requests, {got['passes']} passes, {got['seconds']} s, statuses {got['statuses']})")
    if tmp is not None:
        tmp.cleanup()
    if len(formats) > 1:
        ones = [results[(f, 1)]["labels"] for f in formats]
        same = share(rows, lambda r: all(o[r[0]] == ones[0][r[0]] for o in ones))
        print(f"one row per request gives the same label in every format for {same:.2%} of rows (the same question)")

    passing = {k: v for k, v in results.items() if v["agreement"] >= args.min_agreement}
    chosen = min(passing, key=lambda k: results[k]["over_floor"])
    print(f"cheapest with agreement >= {args.min_agreement:.0%}: answer_format {chosen[0]}, pack_size {chosen[1]} "
          f"(project/floor {results[chosen]['over_floor']:.3f}, agreement {results[chosen]['agreement']:.2%}, "
          f"accuracy {results[chosen]['accuracy']:.2%})")

    # Sensitivity to the grouped format's extra error (the one size the evidence does not give): the
    # model is additive, so a grouped pack of n rows with extra error g disagrees with one row per
    # request on the keyed run's share plus g. Derived from the keyed runs, not run again.
    if "keyed" in formats and "grouped" in formats:
        flips = []
        for g in (0.0, 0.005, 0.01, 0.015, 0.02, 0.03):
            candidates = {("keyed", n): results[("keyed", n)] for n in sizes}
            for n in sizes:
                disagreement = (1 - results[("keyed", n)]["agreement"]) + (g if n > 1 else 0.0)
                if 1 - disagreement >= args.min_agreement:
                    candidates[("grouped", n)] = results[("grouped", n)]
            ok = {k: v for k, v in candidates.items() if k[0] == "grouped" or v["agreement"] >= args.min_agreement}
            best = min(ok, key=lambda k: ok[k]["over_floor"])
            flips.append(f"{g:.1%} -> {best[0]} {best[1]}")
        print("choice by the grouped format's extra error (derived): " + ", ".join(flips))

    print(json.dumps({
        "pack_size": chosen[1], "answer_format": chosen[0], "min_agreement": args.min_agreement,
        "model": args.model, "rows": len(rows), "error_model": errors,
        "configurations": [{"answer_format": f, "pack_size": n, "project_over_floor": round(v["over_floor"], 4),
                            "agreement_with_pack_size_1": round(v["agreement"], 5), "accuracy_vs_gold": round(v["accuracy"], 5),
                            "billed_usd": round(v["billed_usd"], 6), "requests": v["requests"]}
                           for (f, n), v in results.items()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
