"""Helpers of the cost suite (issue 4, "cost down to the floor"), imported by its test modules.

Two ways to run the real pipeline, both against the real emulator over HTTP and a real DuckDB file:

- ``project``: the integration harness (tests/integration/conftest.py, loaded by file path):
  real ``dbtRunner`` builds of integration_tests/, settings through ``cb_*`` vars. Used where the
  dbt log itself is the thing checked.
- ``runs``: ``pipeline.run`` (the function the dbt model calls) on a DuckDB file, one connection
  per run, closed after it: faster, and it lets a test build any classifier (several names, the W1
  prompt on Sonnet so the prefix is cached).

Nothing here needs ``../shared/data``: rows are synthetic reviews (``reviews``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from claude_batch import config, pipeline
import workloads  # bench/workloads.py
from claude_batch.warehouse import Warehouse

HERE = Path(__file__).resolve().parent
_NAME = "claude_batch_tests_integration_conftest"
if _NAME in sys.modules:
    _integration = sys.modules[_NAME]
else:
    _spec = importlib.util.spec_from_file_location(_NAME, HERE.parent / "integration" / "conftest.py")
    _integration = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _integration
    _spec.loader.exec_module(_integration)

DbtProject = _integration.DbtProject
dbt_deps = _integration.dbt_deps  # session fixture: `dbt deps` once


# ---------------------------------------------------------------------------- rows

_OPENINGS = ["Great", "Terrible", "Decent", "Awful", "Lovely", "Broken", "Excellent", "Mediocre", "Perfect", "Useless"]
_THINGS = ["battery", "screen", "headset", "charger", "case", "burger", "film", "waiter", "plot", "cable"]
_ENDINGS = ["would buy again", "want a refund", "arrived on Monday", "works perfectly", "stopped after a week",
            "highly recommend", "never again", "as described", "love it", "waste of money"]


def reviews(n: int, *, distinct: int | None = None, start: int = 1) -> list[tuple[int, str]]:
    """``n`` rows (id, text) with ``distinct`` different texts (default: all distinct), deterministic."""
    distinct = n if distinct is None else distinct
    texts = []
    for i in range(distinct):
        a, b, c = _OPENINGS[i % 10], _THINGS[(i // 10) % 10], _ENDINGS[(i * 7 + i // 100) % 10]
        texts.append(f"{a} {b}, {c}. (order {1000 + i})")
    return [(start + k, texts[k % distinct]) for k in range(n)]


# ---------------------------------------------------------------------------- classifiers

LABELS = {label.name: label.description for label in workloads.W1_LABELS}
EXAMPLES = [(e.text, e.labels[0]) for e in workloads.W1_EXAMPLES]


def classifier(name: str = "review_sentiment", *, model: str = "claude-sonnet-5-5",
               instructions: str = workloads.W1_INSTRUCTIONS, **options: Any) -> config.ClassifierConfig:
    """The W1 prompt (about 2,700 prefix tokens on Sonnet 5.5: cached) under any name and settings.
    No preflight unless asked: these tests count batches and batch prices (the preflight is tested in
    tests/integration/test_todays_api.py and priced by the budget guard, tests/cost/test_budget.py)."""
    options = {"preflight": "never", **options}
    return config.build_config(name, options, key="id", text="body", model=model, instructions=instructions,
                               labels=LABELS, examples=EXAMPLES)


class Runs:
    """pipeline.run on a DuckDB file against the emulator; the source table is app.reviews(id, body)."""

    def __init__(self, path: Path, emulator):
        self.path = path
        self.emulator = emulator
        self.client = emulator.client()

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path))

    def add(self, rows: list[tuple[int, str]]) -> None:
        con = self.connect()
        try:
            con.execute("CREATE SCHEMA IF NOT EXISTS app")
            con.execute("CREATE TABLE IF NOT EXISTS app.reviews (id INTEGER, body VARCHAR)")
            con.executemany("INSERT INTO app.reviews VALUES (?, ?)", rows)
        finally:
            con.close()

    def run(self, cfg: config.ClassifierConfig) -> dict[int, dict]:
        """One run; returns the output rows by id; waits until the emulator has processed what was sent."""
        con = self.connect()
        try:
            rel = pipeline.run(cfg, Warehouse(con), "app.reviews", client=self.client)
            cur = con.execute(f"SELECT * FROM ({rel.sql_query()}) o")
            names = [d[0] for d in cur.description]
            out = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
        finally:
            con.close()
        assert self.emulator.wait_idle(60)
        return out

    def settle(self, cfg: config.ClassifierConfig, max_runs: int = 8) -> tuple[int, dict[int, dict]]:
        """Runs until no row is pending, in flight or being reclassified; returns (runs it took, the output)."""
        for n in range(1, max_runs + 1):
            out = self.run(cfg)
            if not any(r["status"] in ("pending", "in_flight", "reclassifying") for r in out.values()):
                return n, out
        raise AssertionError(f"rows still pending or in flight after {max_runs} runs")

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        con = self.connect()
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()

    def dicts(self, query: str, params: list | None = None) -> list[dict]:
        con = self.connect()
        try:
            cur = con.execute(query, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            con.close()


# ---------------------------------------------------------------------------- what the emulator saw


def sent_rows(emulator) -> Counter:
    """Every row text the emulator received in a batch request, counted (its record, not ours)."""
    counts: Counter = Counter()
    for entry in emulator.received():
        if entry.get("batch") not in (None, "messages"):
            counts.update(entry["rows"])
    return counts


def batch_requests(emulator) -> list[list[str]]:
    """The rows of every batch request the emulator received, in order."""
    return [e["rows"] for e in emulator.received() if e.get("batch") not in (None, "messages")]


def results_usage(emulator) -> list[dict]:
    """(custom_id, model, usage) of every succeeded line of every results file the emulator wrote."""
    out = []
    for path in sorted((emulator.state_dir / "batches").glob("*/results.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["result"]["type"] == "succeeded":
                message = record["result"]["message"]
                out.append({"custom_id": record["custom_id"], "model": message["model"], "usage": message["usage"]})
    return out
