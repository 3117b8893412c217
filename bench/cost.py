"""Cost benchmark: W1 through the real pipeline and the emulator, priced against the cost model.

    python bench/cost.py [--rows 20000] [--pack-size N] [--sweep 1,10,25,50,100] [--sweep-rows N]

What it does (definitions: ``../shared/reference/cost-model.md``):

1. Writes ``--rows`` W1 rows (``workloads.w1_rows``: about 15 % verbatim duplicates) into a DuckDB
   file in a temporary directory and starts the emulator there (``processing_seconds=0``).
2. Runs ``pipeline.run`` (the same code a dbt Python model runs) with the W1 classifier in batch
   mode, pass after pass, until no row is pending or in flight, on each model of ``--models``
   (default: cost-model.md's two, ``claude-haiku-5-5`` and ``claude-sonnet-5-5``).
3. project = ``sum(billed_usd)`` of ``cb_requests``: the usage every response reported, priced by
   ``cost.billed_usd`` (batch prices, cache writes and reads included). Cross-checked against the
   usage in the emulator's own results files (``<state dir>/batches/*/results.jsonl``), token for
   token.
4. floor, naive and seed recipe, computed with ``claude_batch.tokens`` (the counter the emulator
   reports usage with) exactly as the cost model defines them:
   - floor: every unique row's own text tokens at the batch input price, plus the tokens of its
     bare label (the label the run gave it) at the batch output price;
   - naive: one real-time uncached request per row (all rows, no deduplication), with the model's
     defaults otherwise: the whole one-row request (prefix + row) at the input price, plus the
     thinking a one-row call makes by default (measured by one real real-time call with the model's
     default thinking) and a one-row answer at the output price;
   - seed recipe: one batch request per row, every one a cache hit, thinking off where the model
     allows: prefix x cache read x 0.5 + row x input x 0.5 + 25 output tokens (the doc's tool-call
     answer) x output x 0.5. The same
     figure with our own one-row answer instead of 25 tokens is reported as ``seed_own_answer``.
5. Repeats step 1-3 for each pack size of ``--sweep`` (fresh database and emulator each time), on
   the first model only, and reports project / floor for each, and the best.

Prices are each model's own (``_data/models.json``: band by prompt length, the model's cache prices);
thinking tokens are output tokens and are in every figure.

Prints one line per step and, as its last line, a JSON object with every figure
(``project_over_floor``, ``naive_over_floor``, ``seed_over_floor``, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_udfs"))

import duckdb  # noqa: E402

from claude_batch import catalog, config, cost, pipeline, prompts, tokens  # noqa: E402
import workloads  # noqa: E402
from claude_batch.emulator import Emulator  # noqa: E402
from claude_batch.state import StateStore  # noqa: E402
from claude_batch.warehouse import Warehouse  # noqa: E402

MTOK = 1_000_000
CLASSIFIER = "w1_sentiment"
SEED_ANSWER_TOKENS = 25  # the cost model's tool-call answer
MAX_PASSES = 20


def w1_config(pack_size: int | None = None, model: str = workloads.W1_MODEL, **options) -> config.ClassifierConfig:
    """The W1 classifier as a user would configure it; its prompt is exactly ``workloads.w1_spec``."""
    settings = dict(options)
    if pack_size is not None:
        settings["pack_size"] = pack_size
    cfg = config.build_config(
        CLASSIFIER,
        settings,
        key="id",
        text="body",
        model=model,
        instructions=workloads.W1_INSTRUCTIONS,
        labels={label.name: label.description for label in workloads.W1_LABELS},
        examples=[(e.text, e.labels[0]) for e in workloads.W1_EXAMPLES],
    )
    assert cfg.spec == workloads.w1_spec(model), "the bench classifier drifted from workloads.w1_spec"
    return cfg


def load_rows(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, str]]) -> None:
    import pyarrow as pa

    con.execute("CREATE SCHEMA IF NOT EXISTS app")
    con.execute("CREATE TABLE app.reviews (id INTEGER, body VARCHAR)")
    data = pa.table({"id": [r[0] for r in rows], "body": [r[1] for r in rows]})
    con.register("w1_rows_arrow", data)
    con.execute("INSERT INTO app.reviews SELECT * FROM w1_rows_arrow")
    con.unregister("w1_rows_arrow")


def emulator_usage(state_dir: Path) -> dict:
    """Token sums and billed USD from the emulator's own results files (not from our tables)."""
    sums = Counter()
    billed = 0.0
    lines = 0
    for path in sorted((state_dir / "batches").glob("*/results.jsonl")):
        with open(path, encoding="utf-8") as src:
            for line in src:
                record = json.loads(line)
                result = record["result"]
                if result["type"] != "succeeded":
                    continue
                message = result["message"]
                usage = cost.Usage.from_api(message["usage"])
                lines += 1
                sums["input_tokens"] += usage.input_tokens
                sums["output_tokens"] += usage.output_tokens
                sums["cache_write_5m_tokens"] += usage.cache_write_5m_tokens
                sums["cache_write_1h_tokens"] += usage.cache_write_1h_tokens
                sums["cache_read_tokens"] += usage.cache_read_tokens
                sums["thinking_tokens"] += usage.thinking_tokens
                billed += cost.billed_usd(message["model"], usage)
    return {"requests": lines, "billed_usd": billed, **sums}


def run_project(rows: list[tuple[int, str]], pack_size: int, workdir: Path, *, model: str = workloads.W1_MODEL,
                quiet: bool = True) -> dict:
    """W1 through pipeline.run until nothing is pending or in flight; the run's usage and cost."""
    workdir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(workdir / "w1.duckdb"))
    load_rows(con, rows)
    cfg = w1_config(pack_size, model)
    wh = Warehouse(con)
    started = time.monotonic()
    with Emulator(state_dir=workdir / "emulator", processing_seconds=0) as emu:
        client = emu.client()
        passes = 0
        while True:
            out = pipeline.run(cfg, wh, "app.reviews", client=client)
            passes += 1
            waiting = con.execute(
                f"SELECT count(*) FILTER (WHERE status IN ('pending', 'in_flight')) FROM ({out.sql_query()})"
            ).fetchone()[0]
            if not waiting:
                break
            if passes >= MAX_PASSES:
                raise RuntimeError(f"{waiting} row(s) still pending or in flight after {passes} passes")
            emu.wait_idle(600)
        labelled = con.execute(f"SELECT id, label, status FROM ({out.sql_query()})").fetchall()
        received_rows = sum(len(r["rows"]) for r in emu.received())
        from_emulator = emulator_usage(emu.state_dir)
        default_thinking = one_row_default_thinking(client, model)
    elapsed = time.monotonic() - started

    store = StateStore(wh)
    t = store.t
    keys = ("requests", "items", "input_tokens", "output_tokens", "cache_write_5m_tokens",
            "cache_write_1h_tokens", "cache_read_tokens", "billed_usd", "batches", "thinking_tokens")

    def totals(modes: tuple[str, ...]) -> dict:
        row = con.execute(f"""
            SELECT count(*), coalesce(sum(item_count), 0), sum(input_tokens), sum(output_tokens),
                   sum(cache_write_5m_tokens), sum(cache_write_1h_tokens), sum(cache_read_tokens),
                   sum(billed_usd), count(DISTINCT batch_id), sum(thinking_tokens)
            FROM {t['cb_requests']} WHERE classifier = ? AND status = 'succeeded'
              AND submission_key IN (SELECT submission_key FROM {t['cb_batches']}
                                     WHERE mode IN ({", ".join("?" * len(modes))}))""",
            [CLASSIFIER, *modes]).fetchone()
        return dict(zip(keys, row))

    # Every request the run paid for (the preflight's real-time one included) is the project's cost;
    # the batch ones are checked token for token against the emulator's own results files.
    ours = totals(("batch", "realtime"))
    in_batches = totals(("batch",))
    for key in ("input_tokens", "output_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
                "cache_read_tokens", "thinking_tokens", "requests"):
        if int(in_batches[key] or 0) != int(from_emulator[key]):
            raise AssertionError(f"{key}: cb_requests has {in_batches[key]}, the emulator's results files {from_emulator[key]}")
    if abs(in_batches["billed_usd"] - from_emulator["billed_usd"]) > 1e-9:
        raise AssertionError(f"billed: cb_requests ${in_batches['billed_usd']:.9f} vs emulator usage ${from_emulator['billed_usd']:.9f}")
    labels = {i: label for i, label, _ in labelled}
    statuses = Counter(status for _, _, status in labelled)
    con.close()
    return {
        "pack_size": pack_size, "passes": passes, "seconds": round(elapsed, 1), "rows": len(rows),
        "rows_sent": received_rows, "statuses": dict(statuses), "labels": labels, **ours,
        "billed_usd_emulator": from_emulator["billed_usd"], "default_thinking_tokens": default_thinking,
    }


def one_row_answer_tokens(label: str, model: str) -> int:
    """Our answer to a one-row request: what a real-time per-row call would return."""
    return tokens.count_model_text(json.dumps({"groups": [{"label": label, "ids": [1]}]}, separators=(",", ":")), model)


def one_row_default_thinking(client, model: str) -> int:
    """Thinking tokens of one real-time one-row call with the model's default thinking (no thinking
    or effort sent), as the API (here the emulator) reports them: the naive baseline's thinking."""
    params = prompts.build_params(workloads.w1_spec(model), [(1, "It works.")], cache=False)
    params.pop("thinking", None)
    params.get("output_config", {}).pop("effort", None)
    params["max_tokens"] = catalog.model_info(model).max_output_tokens
    message = client.post("/v1/messages", body=params, cast_to=object)
    details = (message.get("usage") or {}).get("output_tokens_details") or {}
    return int(details.get("thinking_tokens") or 0)


def reference_figures(rows: list[tuple[int, str]], labels: dict[int, str | None], model: str,
                      default_thinking: int = 0) -> dict:
    """floor, naive and seed recipe per cost-model.md, all counted with claude_batch.tokens in the
    model's tokenizer and priced at the model's own (first band) prices."""
    spec = workloads.w1_spec(model)
    band = catalog.model_info(model).prices[0]
    inp, out = band.input, band.output
    read = band.cache_read / band.input
    half = catalog.BATCH_DISCOUNT
    probe = prompts.build_params(spec, [(1, "")], cache=False)
    prefix = tokens.REQUEST_OVERHEAD_TOKENS + cost.prefix_tokens(probe)
    fallback = spec.label_names[-1]

    floor = floor_in = 0.0
    seen: set[str] = set()
    naive = seed = seed_own = 0.0
    row_tokens_total = 0
    for row_id, text in rows:
        label = labels.get(row_id) or fallback
        one = prompts.build_params(spec, [(1, text)], cache=False)
        request = tokens.count_request(one)
        row_part = request - prefix  # the user message: the row as we send it, with its tag
        answer = one_row_answer_tokens(label, model)
        naive += (request * inp + (default_thinking + answer) * out) / MTOK
        seed += (prefix * inp * read * half + row_part * inp * half
                 + SEED_ANSWER_TOKENS * out * half) / MTOK
        seed_own += (prefix * inp * read * half + row_part * inp * half + answer * out * half) / MTOK
        if text not in seen:
            seen.add(text)
            own = tokens.count_model_text(text, model)
            row_tokens_total += own
            floor += (own * inp * half + tokens.count_model_text(label, model) * out * half) / MTOK
            floor_in += own * inp * half / MTOK
    return {
        "floor_usd": floor, "floor_input_usd": floor_in, "floor_output_usd": floor - floor_in, "naive_usd": naive, "seed_usd": seed, "seed_own_answer_usd": seed_own,
        "prefix_tokens": prefix, "unique_rows": len(seen),
        "mean_row_tokens": row_tokens_total / max(len(seen), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="W1 rows (default 20000)")
    parser.add_argument("--pack-size", type=int, default=None,
                        help="pack size of the main run (default: the config default)")
    parser.add_argument("--sweep", default="1,10,25,50,100", help="pack sizes to compare ('' to skip)")
    parser.add_argument("--sweep-rows", type=int, default=None, help="rows per sweep run (default --rows)")
    parser.add_argument("--workdir", default=None, help="keep the DuckDB files and emulator state here")
    parser.add_argument("--verbose", action="store_true", help="show the pipeline's own log lines")
    parser.add_argument("--models", default=f"{workloads.W1_MODEL},{workloads.W1_SECOND_MODEL}",
                        help="models to run W1 on (cost-model.md's two by default); the sweep runs on the first")
    args = parser.parse_args(argv)
    # Outside dbt the pipeline logs to the "claude_batch" logger (claude_batch.logs): warnings show, info with --verbose.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")

    if workloads.default_data_dir() is None:
        print(f"W1 corpus not found: set {workloads.DATA_DIR_ENV}", file=sys.stderr)
        return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    default_pack = config.ClassifierConfig.__dataclass_fields__["pack_size"].default
    pack_size = args.pack_size or default_pack
    rows = workloads.w1_rows(args.rows)
    tmp = tempfile.TemporaryDirectory(prefix="cb-bench-cost-") if args.workdir is None else None
    base = Path(args.workdir or tmp.name)
    per_model = {}
    for n, model in enumerate(models):
        per_model[model] = bench_model(model, rows, pack_size, default_pack, base / model,
                                       args.sweep if n == 0 else "", args.sweep_rows)
    first = per_model[models[0]]
    figures = {
        **first,
        "models": {m: {k: v for k, v in f.items() if k != "sweep_project_over_floor"} for m, f in per_model.items()},
        "project_over_floor_by_model": {m: f["project_over_floor"] for m, f in per_model.items()},
        "target_met": first["project_over_floor"] <= 1.5,
    }
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(figures))
    return 0


def bench_model(model: str, rows: list[tuple[int, str]], pack_size: int, default_pack: int, base: Path,
                sweep_arg: str, sweep_rows_arg: int | None) -> dict:
    info = catalog.model_info(model)
    plan = prompts.thinking_plan(info)
    print(f"== {model}: W1, {len(rows)} rows, {len(set(t for _, t in rows))} unique texts, batch, prices as of "
          f"{catalog.AS_OF} (input ${info.prices[0].input}/MTok, output ${info.prices[0].output}/MTok); "
          f"thinking sent {plan.param}, effort {plan.effort}; pack_size {pack_size}")
    main_run = run_project(rows, pack_size, base / f"main-p{pack_size}", model=model)
    ref = reference_figures(rows, main_run["labels"], model, main_run["default_thinking_tokens"])
    project = main_run["billed_usd"]
    floor = ref["floor_usd"]
    print(f"run: {main_run['passes']} pass(es), {main_run['seconds']}s, {main_run['requests']} request(s) in "
          f"{main_run['batches']} batch(es), {main_run['rows_sent']} row text(s) sent, statuses {main_run['statuses']}")
    print(f"usage: input {main_run['input_tokens']}, output {main_run['output_tokens']} (thinking "
          f"{main_run['thinking_tokens']}), cache write 1h {main_run['cache_write_1h_tokens']} / 5m "
          f"{main_run['cache_write_5m_tokens']}, cache read {main_run['cache_read_tokens']} "
          "(cb_requests == emulator results files: yes)")
    print(f"prefix {ref['prefix_tokens']} tokens; unique rows {ref['unique_rows']}, "
          f"{ref['mean_row_tokens']:.1f} tokens each on average; a one-row call with default thinking thinks "
          f"{main_run['default_thinking_tokens']} tokens")
    print(f"project ${project:.4f}  floor ${floor:.4f}  naive ${ref['naive_usd']:.4f}  seed recipe ${ref['seed_usd']:.4f}"
          f"  (seed with our one-row answer ${ref['seed_own_answer_usd']:.4f})")
    print(f"project/floor {project / floor:.3f}   naive/floor {ref['naive_usd'] / floor:.2f}   "
          f"seed/floor {ref['seed_usd'] / floor:.2f}")
    band = info.prices[0]
    half = catalog.BATCH_DISCOUNT
    parts = {
        "row_input": main_run["input_tokens"] * band.input * half / MTOK,
        "cache_read": main_run["cache_read_tokens"] * band.cache_read * half / MTOK,
        "cache_write": (main_run["cache_write_1h_tokens"] * band.cache_write_1h
                        + main_run["cache_write_5m_tokens"] * band.cache_write_5m) * half / MTOK,
        "output": (main_run["output_tokens"] - main_run["thinking_tokens"]) * band.output * half / MTOK,
        "thinking": main_run["thinking_tokens"] * band.output * half / MTOK,
    }
    print("where the project's cost goes (share of floor): "
          + ", ".join(f"{k} {v / floor:.3f}" for k, v in parts.items()))
    over = {
        "row tags and request overhead": parts["row_input"] - ref["floor_input_usd"],
        "prefix cache reads": parts["cache_read"],
        "prefix cache writes": parts["cache_write"],
        "answer JSON beyond bare labels": parts["output"] - ref["floor_output_usd"],
        "thinking": parts["thinking"],
    }
    print(f"project - floor = {(project - floor) / floor:.3f} x floor: "
          + ", ".join(f"{k} {v / floor:+.3f}" for k, v in over.items()))
    if main_run["rows_sent"] != ref["unique_rows"]:
        raise AssertionError(f"{main_run['rows_sent']} row texts sent for {ref['unique_rows']} unique texts")

    sweep: dict[int, float] = {}
    sizes = [int(s) for s in sweep_arg.split(",") if s.strip()]
    if sizes:
        sweep_rows = rows if not sweep_rows_arg else workloads.w1_rows(sweep_rows_arg)
        labels_ref = None
        for size in sizes:
            if size == pack_size and len(sweep_rows) == len(rows):
                got = main_run
            else:
                got = run_project(sweep_rows, size, base / f"sweep-p{size}", model=model)
            if labels_ref is None:
                labels_ref = reference_figures(sweep_rows, got["labels"], model)["floor_usd"]
            sweep[size] = got["billed_usd"] / labels_ref
            print(f"sweep pack_size {size:>4}: project ${got['billed_usd']:.4f}, {got['requests']} request(s), "
                  f"project/floor {sweep[size]:.3f}")
        best = min(sweep, key=sweep.get)
        print(f"cheapest pack_size in the sweep: {best} (project/floor {sweep[best]:.3f}); config default is "
              f"{default_pack} (project/floor {sweep.get(default_pack, float('nan')):.3f}; why not larger: docs/cost.md)")

    return {
        "rows": len(rows), "unique_rows": ref["unique_rows"], "model": model, "pack_size": pack_size,
        "project_usd": round(project, 6), "floor_usd": round(floor, 6), "naive_usd": round(ref["naive_usd"], 6),
        "seed_usd": round(ref["seed_usd"], 6), "seed_own_answer_usd": round(ref["seed_own_answer_usd"], 6),
        "project_over_floor": round(project / floor, 4),
        "naive_over_floor": round(ref["naive_usd"] / floor, 4),
        "seed_over_floor": round(ref["seed_usd"] / floor, 4),
        "seed_own_answer_over_floor": round(ref["seed_own_answer_usd"] / floor, 4),
        "requests": main_run["requests"], "batches": main_run["batches"], "passes": main_run["passes"],
        "rows_sent": main_run["rows_sent"], "prefix_tokens": ref["prefix_tokens"],
        "input_tokens": main_run["input_tokens"], "output_tokens": main_run["output_tokens"],
        "thinking_tokens": main_run["thinking_tokens"],
        "naive_default_thinking_tokens_per_row": main_run["default_thinking_tokens"],
        "cache_read_tokens": main_run["cache_read_tokens"],
        "cache_write_tokens": main_run["cache_write_1h_tokens"] + main_run["cache_write_5m_tokens"],
        "emulator_usage_matches": True,
        "sweep_project_over_floor": {str(k): round(v, 4) for k, v in sweep.items()},
        "cheapest_pack_size_in_sweep": min(sweep, key=sweep.get) if sweep else None,
    }


if __name__ == "__main__":
    sys.exit(main())
