"""Batches → results: turn ended batches (or real-time answers) into result rows, usage and cost.

Two ways in, one way out:
- batch results are streamed to a file and parsed by DuckDB itself (``read_json`` and its JSON
  functions explode every answer into (request, row id, label) pairs and check the labels): no
  Python work per row, so a million rows are ingested at DuckDB's speed;
- real-time answers, and the rare batch answer SQL cannot read (code fences, several text
  blocks), go through ``prompts.parse_answer`` in Python (``Staging``).
Both fill the same two temp tables (``cb_tmp_req`` per request, ``cb_tmp_ans`` per row), and
``apply_staging`` writes a submission's outcomes to the state tables in one transaction. The two
parsers follow the same rules; tests/unit/test_collect_parsers.py holds them to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import batches, catalog, cost, logs, prompts, tmpfiles, tokens
from ._crashpoints import checkpoint
from .state import StateStore, Submission
from .statuses import BatchStatus, Outcome
from .warehouse import (STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS, STAGE_REQUESTS, STAGE_REQUESTS_COLUMNS,
                        ResultShape, Sql, Warehouse)
from .warehouse.duckdb import BIT_LABELS  # noqa: F401  (the SQL judge's bit-mask limit; tests size label sets by it)


MAX_RAW_ANSWER_CHARS = 4_000

# Staged rows: one per request (``ln`` numbers them within the staging) and one per row named in
# an answer, keyed by (ln, item_id): integers, not the custom_id string, so the million-row
# grouping and join of a big batch compare two numbers.
_REQ_SCHEMA = pa.schema([
    ("ln", pa.int32()), ("custom_id", pa.string()), ("status", pa.string()), ("error_type", pa.string()),
    ("error_message", pa.string()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("cache_write_5m_tokens", pa.int64()), ("cache_write_1h_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()), ("service_tier", pa.string()), ("billed_usd", pa.float64()),
    ("raw_answer", pa.string()), ("thinking_tokens", pa.int64()),
])
_ANS_SCHEMA = pa.schema([
    ("ln", pa.int32()), ("item_id", pa.int32()), ("status", pa.string()),
    ("labels", pa.list_(pa.string())), ("error", pa.string()), ("answer_tokens", pa.int32()),
])


@dataclass
class Collected:
    requests: int = 0
    texts: int = 0  # distinct texts answered (cb_runs.collected_items)
    billed_usd: float = 0.0
    naive_usd: float = 0.0


def single_answer_tokens(label: str) -> int:
    """Output tokens of a one-row answer with this label: the naive baseline's output."""
    return tokens.count_text(json.dumps({"groups": [{"label": label, "ids": [1]}]}, separators=(",", ":")))


class Staging:
    """Python-parsed outcomes, in columns (not a list of dicts) so they stay small in memory."""

    def __init__(self) -> None:
        self.req: dict[str, list] = {f.name: [] for f in _REQ_SCHEMA}
        self.ans: dict[str, list] = {f.name: [] for f in _ANS_SCHEMA}
        self._answer_tokens: dict[tuple[str, ...], int] = {}
        self._ln: dict[str, int] = {}

    def add_request(self, custom_id: str, status: str, *, usage: cost.Usage | None, billed: float | None,
                    error_type: str | None = None, error_message: str | None = None, raw: str | None = None,
                    ln: int | None = None) -> None:
        """``ln``: the request's number in the staging (default: the next one)."""
        u = usage or cost.Usage()
        ln = len(self._ln) + 1 if ln is None else ln
        self._ln[custom_id] = ln
        row = {
            "ln": ln, "custom_id": custom_id, "status": status, "error_type": error_type, "error_message": error_message,
            "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_write_5m_tokens": u.cache_write_5m_tokens, "cache_write_1h_tokens": u.cache_write_1h_tokens,
            "cache_read_tokens": u.cache_read_tokens, "service_tier": u.service_tier if usage else None,
            "billed_usd": billed, "raw_answer": raw, "thinking_tokens": u.thinking_tokens,
        }
        for key, value in row.items():
            self.req[key].append(value)

    def add_outcome(self, custom_id: str, outcome: prompts.ItemOutcome) -> None:
        labels = outcome.labels
        if labels not in self._answer_tokens:
            self._answer_tokens[labels] = sum(single_answer_tokens(label) for label in labels)
        self.ans["ln"].append(self._ln[custom_id])
        self.ans["item_id"].append(outcome.item_id)
        self.ans["status"].append(outcome.status)
        self.ans["labels"].append(list(labels) if labels else None)
        self.ans["error"].append(outcome.error)
        self.ans["answer_tokens"].append(self._answer_tokens[labels])

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return pa.table(self.req, schema=_REQ_SCHEMA), pa.table(self.ans, schema=_ANS_SCHEMA)


def stage_message(staging: Staging, spec: prompts.PromptSpec, model: str, custom_id: str, item_count: int,
                  result_type: str, message: dict | None, error: dict | None, ln: int | None = None) -> None:
    """One request's outcome, from a batch result line or a real-time answer."""
    if result_type == Outcome.SUCCEEDED and message is not None:
        usage = cost.Usage.from_api(message.get("usage"))
        billed = cost.billed_usd(model, usage)
        outcomes, raw = prompts.parse_answer(spec, message.get("content") or [], range(1, item_count + 1))
        bad = any(o.status != Outcome.SUCCEEDED for o in outcomes)
        if message.get("stop_reason") == "max_tokens":
            raw = f"[stop_reason=max_tokens] {raw}"
        staging.add_request(custom_id, Outcome.SUCCEEDED, usage=usage, billed=billed,
                            raw=raw[:MAX_RAW_ANSWER_CHARS] if bad else None, ln=ln)
        for outcome in outcomes:
            staging.add_outcome(custom_id, outcome)
        return
    inner = (error or {}).get("error") or error or {}
    staging.add_request(
        custom_id, result_type, usage=None, billed=0.0,
        error_type=inner.get("type") if result_type == Outcome.ERRORED else None,
        error_message=inner.get("message") if result_type == Outcome.ERRORED else None, ln=ln,
    )


def _create_staging_tables(wh: Warehouse) -> None:
    wh.create_staging(STAGE_REQUESTS, STAGE_REQUESTS_COLUMNS)
    wh.create_staging(STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS)


def _load_python_staging(wh: Warehouse, staging: Staging) -> None:
    req, ans = staging.tables()
    for name, table in (("cb_tmp_req", req), ("cb_tmp_ans", ans)):
        if table.num_rows == 0:
            continue
        with wh.arrow_relation(table) as view:
            wh.append_select(name, table.column_names, f"SELECT * FROM {view}")


# ---------------------------------------------------------------------------- batch results, in SQL


def stage_results_file(store: StateStore, path: Path, spec: prompts.PromptSpec, model: str,
                       submission_key: str) -> str:
    """Parse a results JSONL with the warehouse (``Warehouse.stage_batch_results``): stage its
    requests (``cb_tmp_req``) and return the SQL of its rows' outcomes (ln, item_id, status, labels,
    error, answer_tokens), which the write reads without an intermediate table. Answers SQL could not
    read (several blocks, fences, cut by max_tokens) go through the Python parser into ``cb_tmp_ans``,
    part of that SQL."""
    shape = ResultShape(
        answer_format=spec.answer_format, multi_label=spec.multi_label, label_names=tuple(spec.label_names),
        label_tokens=tuple(single_answer_tokens(n) for n in spec.label_names),
        billed_sql=lambda usage: cost.billed_usd_sql(model, usage), max_raw_chars=MAX_RAW_ANSWER_CHARS)
    staged = store.wh.stage_batch_results(str(path), requests_table=store.t["cb_requests"],
                                          submission_key=submission_key, shape=shape)
    if staged.unknown_lines:
        logs.warn(f"{staged.unknown_lines} result line(s) had custom_ids this submission never sent; ignored")
    if staged.odd:
        staging = Staging()
        for ln, custom_id, item_count, message in staged.odd:
            stage_message(staging, spec, model, custom_id, item_count, Outcome.SUCCEEDED, json.loads(message), None,
                          ln=ln)
        _load_python_staging(store.wh, staging)
    return staged.outcomes_sql


# ---------------------------------------------------------------------------- writing


def apply_staging(store: StateStore, staging: Staging | None, submission_key: str, *, classifier: str,
                  batch_id: str | None, model: str, final_status: str = BatchStatus.COLLECTED,
                  outcomes_sql: str = "SELECT * FROM cb_tmp_ans") -> Collected:
    """Write a submission's staged outcomes to its requests and to the results, in one transaction.

    ``staging`` is the Python-parsed outcomes (real-time path); None means the staging tables were
    filled by ``stage_results_file``, whose SQL for the rows' outcomes is ``outcomes_sql``.
    """
    wh, t = store.wh, store.t
    if staging is not None:
        _create_staging_tables(wh)
        _load_python_staging(wh, staging)
    info = catalog.model_info(model)
    # The naive baseline is priced in the first band (a one-row request is far below any band edge);
    # a model with no prices gets NULL costs, said in the log by the pipeline.
    in_price, out_price = (info.prices[0].input, info.prices[0].output) if info.prices else ("NULL", "NULL")
    billed_share = "coalesce(r.billed_usd, 0)" if info.prices else "r.billed_usd"
    store.result_writes += 1
    now = wh.now_sql()
    mine = wh.starts_with_sql("custom_id", f"{submission_key}-")  # custom_ids carry their submission key
    # 1. The requests: status, error and usage from the staged lines (a request the results never
    # mentioned, which should not happen, counts as expired: retryable), and row_chars for requests
    # an older release planned (the naive share needs it). Repeated after a crash: the same values.
    wh.update_from(t["cb_requests"], ["custom_id"], f"""
        SELECT q.custom_id, coalesce(s.status, 'expired') AS status, s.error_type,
               CASE WHEN s.custom_id IS NULL THEN 'no result line for this request' ELSE s.error_message END
                   AS error_message,
               s.input_tokens, s.output_tokens, s.cache_write_5m_tokens, s.cache_write_1h_tokens,
               s.cache_read_tokens, s.service_tier, s.billed_usd, s.thinking_tokens, {now} AS collected_at,
               coalesce(q.row_chars, c.chars) AS row_chars
        FROM {t['cb_requests']} q
        LEFT JOIN {STAGE_REQUESTS} s ON s.custom_id = q.custom_id
        LEFT JOIN (SELECT custom_id, sum(row_chars) AS chars FROM {t['cb_request_items']}
                   WHERE custom_id IN (SELECT custom_id FROM {t['cb_requests']}
                                       WHERE submission_key = ? AND row_chars IS NULL)
                   GROUP BY custom_id) c ON c.custom_id = q.custom_id
        WHERE q.submission_key = ? AND (q.status IN ('submitting', 'in_flight') OR s.custom_id IS NOT NULL)""",
        ["status", "error_type", "error_message", "input_tokens", "output_tokens", "cache_write_5m_tokens",
         "cache_write_1h_tokens", "cache_read_tokens", "service_tier", "billed_usd", "thinking_tokens",
         "collected_at", "row_chars"],
        [submission_key, submission_key])
    # 2. Item outcomes go straight into the append-only results (cb_current_results picks the one
    # that counts: a success wins over later failures): the answer's verdict, else the request's
    # result type (missing if it succeeded). No intermediate table: at a million rows, writing the
    # outcomes twice cost as much as the rest of the collect. Appended once: a repeat after a crash
    # finds the submission's rows and adds none.
    wh.append_select(
        t["cb_results"],
        ["version", "text_hash", "status", "labels", "raw_answer", "error_type", "error_message", "custom_id",
         "batch_id", "attempt", "model", "classifier", "collected_at", "billed_usd", "naive_usd"],
        f"""
        WITH a AS ({outcomes_sql})
        SELECT i.version, i.text_hash,
               CASE WHEN r.status = 'succeeded' THEN coalesce(a.status, 'missing') ELSE r.status END,
               a.labels,
               CASE WHEN coalesce(a.status, 'missing') <> 'succeeded' THEN r.raw_answer END,
               CASE WHEN r.status = 'succeeded' AND coalesce(a.status, 'missing') <> 'succeeded' THEN NULL
                    ELSE r.error_type END,
               CASE WHEN r.status = 'succeeded' THEN coalesce(a.error, CASE WHEN a.status IS NULL THEN 'row missing from the answer' END)
                    ELSE r.error_message END,
               i.custom_id, ?, i.attempt, ?, ?, {now},
               {billed_share} / greatest(r.item_count, 1),
               -- Naive: this text alone in a real-time uncached call: the prefix, plus its share
               -- (by characters) of the request's other input tokens, plus a one-row answer, plus
               -- its share of the thinking the request paid for (a model that cannot stop thinking).
               CASE WHEN a.status = 'succeeded' THEN
                   ((r.prefix_actual
                     + greatest(r.total_input - r.prefix_actual, 0) * i.row_chars / greatest(r.row_chars, 1))
                    * {in_price} + (a.answer_tokens
                                    + coalesce(r.thinking_tokens, 0) * i.row_chars / greatest(r.row_chars, 1))
                    * {out_price}) / 1e6
               ELSE 0 END
        FROM {t['cb_request_items']} i
        JOIN (  -- the submission's requests with their staged line: one small table, one join of the items
            SELECT q.custom_id, q.status, q.error_message, q.error_type, q.billed_usd, q.item_count, q.row_chars,
                   q.thinking_tokens,
                   CASE WHEN coalesce(q.cache_read_tokens, 0) + coalesce(q.cache_write_5m_tokens, 0)
                             + coalesce(q.cache_write_1h_tokens, 0) > 0
                        THEN q.cache_read_tokens + q.cache_write_5m_tokens + q.cache_write_1h_tokens
                        ELSE q.prefix_tokens END AS prefix_actual,
                   coalesce(q.input_tokens, 0) + coalesce(q.cache_read_tokens, 0)
                       + coalesce(q.cache_write_5m_tokens, 0) + coalesce(q.cache_write_1h_tokens, 0) AS total_input,
                   s.ln, s.raw_answer
            FROM {t['cb_requests']} q LEFT JOIN {STAGE_REQUESTS} s ON s.custom_id = q.custom_id
            WHERE q.submission_key = ?
        ) r ON r.custom_id = i.custom_id
        LEFT JOIN a ON a.ln = r.ln AND a.item_id = i.item_id
        WHERE NOT EXISTS (SELECT 1 FROM {t['cb_results']} WHERE {mine})""",
        [batch_id, model, classifier, submission_key])
    checkpoint("collect_before_commit")
    got = finish_collect(store, submission_key, final_status)
    for name in (STAGE_REQUESTS, STAGE_ANSWERS, "cb_tmp_lines"):
        wh.drop_temp(name)
    return got


def finish_collect(store: StateStore, submission_key: str, final_status: str = BatchStatus.COLLECTED) -> Collected:
    """The end of a collect, from the state alone (so a run killed after the results were written
    can finish it): the requests' naive cost from their results, then the submission's status (the
    commit point). Both idempotent."""
    wh, t = store.wh, store.t
    # This submission's rows (its custom_ids carry its key), summed per request once: the requests'
    # naive cost and the totals both come from it.
    written = wh.temp_name("written")
    wh.create_temp_table(written, f"""
        SELECT custom_id, count(*) AS items, sum(billed_usd) AS billed, sum(naive_usd) AS naive
        FROM {t['cb_results']} WHERE {wh.starts_with_sql("custom_id", f"{submission_key}-")}
        GROUP BY custom_id""")
    wh.update_from(t["cb_requests"], ["custom_id"], f"SELECT custom_id, naive AS naive_usd FROM {written}",
                   ["naive_usd"])
    wh.update(t["cb_batches"], {"status": final_status, "collected_at": Sql(wh.now_sql())},
              "submission_key = ?", [submission_key])
    totals = wh.fetchall(
        f"SELECT count(*), coalesce(sum(items), 0), coalesce(sum(billed), 0), coalesce(sum(naive), 0) FROM {written}")[0]
    wh.drop_temp(written)
    return Collected(requests=int(totals[0]), texts=int(totals[1]), billed_usd=float(totals[2]), naive_usd=float(totals[3]))


def collect_batch(store: StateStore, client: Any, sub: Submission, spec: prompts.PromptSpec, *, classifier: str,
                  work_dir: str | None = None) -> Collected | None:
    """Refresh one submitted batch; if it ended, download and write its results. None if still running."""
    batch = batches.retrieve(client, sub.batch_id)
    store.update_batch_status(sub.submission_key, batch)
    if batch["processing_status"] != BatchStatus.ENDED:
        return None
    expected = int(sub.request_count)
    if batch.get("archived_at") or not batch.get("results_url"):
        # Results are gone (archived after 29 days): nothing we can see was billed; retry the rows.
        staging = Staging()
        for (cid,) in store.wh.fetchall(
            f"SELECT custom_id FROM {store.t['cb_requests']} WHERE submission_key = ?", [sub.submission_key]
        ):
            staging.add_request(cid, Outcome.EXPIRED, usage=None, billed=0.0,
                                error_message="results archived before they were collected")
        got = apply_staging(store, staging, sub.submission_key, classifier=classifier,
                            batch_id=sub.batch_id, model=sub.model)
    else:
        with tmpfiles.temp_dir("results", dir=work_dir) as tmp:  # named after this process (tmpfiles.sweep)
            path = Path(tmp) / f"{sub.batch_id}.jsonl"
            batches.download_results(client, sub.batch_id, path, expected_lines=expected)
            checkpoint("after_download")
            outcomes = stage_results_file(store, path, spec, sub.model, sub.submission_key)
            got = apply_staging(store, None, sub.submission_key, classifier=classifier,
                                batch_id=sub.batch_id, model=sub.model, outcomes_sql=outcomes)
    checkpoint("after_collect_write")
    return got
