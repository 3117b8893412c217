"""Batches → results: turn ended batches (or real-time answers) into result rows, usage and cost.

Batch results are streamed to a file and parsed by DuckDB's ``read_json``; Python only reads each
request's answer (a few hundred bytes) to check labels against the allowed set. Everything a
submission produced lands in one transaction (see ``StateStore.write_collected``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from . import batches, catalog, cost, prompts, tokens
from .crashpoints import checkpoint
from .state import StateStore

log = logging.getLogger(__name__)

MAX_RAW_ANSWER_CHARS = 4_000


@dataclass
class Collected:
    requests: int = 0
    items: int = 0
    billed_usd: float = 0.0
    naive_usd: float = 0.0


class _Staging:
    """Columnar buffers (not a list of dicts) so a million items stay small in memory."""

    def __init__(self) -> None:
        self.req = {k: [] for k in (
            "custom_id", "status", "error_type", "error_message", "input_tokens", "output_tokens",
            "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens", "service_tier",
            "billed_usd", "raw_answer",
        )}
        self.ans = {k: [] for k in ("custom_id", "item_id", "status", "labels", "error", "answer_tokens")}

    def add_request(self, custom_id: str, status: str, *, usage: cost.Usage | None, billed: float,
                    error_type: str | None = None, error_message: str | None = None, raw: str | None = None) -> None:
        u = usage or cost.Usage()
        for key, value in (
            ("custom_id", custom_id), ("status", status), ("error_type", error_type),
            ("error_message", error_message), ("input_tokens", u.input_tokens),
            ("output_tokens", u.output_tokens), ("cache_write_5m_tokens", u.cache_write_5m_tokens),
            ("cache_write_1h_tokens", u.cache_write_1h_tokens), ("cache_read_tokens", u.cache_read_tokens),
            ("service_tier", u.service_tier if usage else None), ("billed_usd", billed),
            ("raw_answer", raw),
        ):
            self.req[key].append(value)

    def add_outcome(self, custom_id: str, outcome: prompts.ItemOutcome) -> None:
        self.ans["custom_id"].append(custom_id)
        self.ans["item_id"].append(outcome.item_id)
        self.ans["status"].append(outcome.status)
        self.ans["labels"].append(list(outcome.labels) if outcome.labels else None)
        self.ans["error"].append(outcome.error)
        # What a one-row answer with these labels would cost: the naive baseline's output.
        single = {"groups": [{"label": label, "ids": [1]} for label in outcome.labels]}
        self.ans["answer_tokens"].append(tokens.count_text(json.dumps(single, separators=(",", ":"))))

    def tables(self) -> tuple[pa.Table, pa.Table]:
        req = pa.table(self.req, schema=pa.schema([
            ("custom_id", pa.string()), ("status", pa.string()), ("error_type", pa.string()),
            ("error_message", pa.string()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
            ("cache_write_5m_tokens", pa.int64()), ("cache_write_1h_tokens", pa.int64()),
            ("cache_read_tokens", pa.int64()), ("service_tier", pa.string()), ("billed_usd", pa.float64()),
            ("raw_answer", pa.string()),
        ]))
        ans = pa.table(self.ans, schema=pa.schema([
            ("custom_id", pa.string()), ("item_id", pa.int32()), ("status", pa.string()),
            ("labels", pa.list_(pa.string())), ("error", pa.string()), ("answer_tokens", pa.int32()),
        ]))
        return req, ans


def stage_message(staging: _Staging, spec: prompts.PromptSpec, model: str, custom_id: str, item_count: int,
                  result_type: str, message: dict | None, error: dict | None) -> None:
    """One request's outcome, from a batch result line or a real-time answer."""
    if result_type == "succeeded" and message is not None:
        usage = cost.Usage.from_api(message.get("usage"))
        billed = cost.billed_usd(model, usage)
        outcomes, raw = prompts.parse_answer(spec, message.get("content") or [], range(1, item_count + 1))
        bad = any(o.status != "succeeded" for o in outcomes)
        if message.get("stop_reason") == "max_tokens":
            raw = f"[stop_reason=max_tokens] {raw}"
        staging.add_request(custom_id, "succeeded", usage=usage, billed=billed,
                            raw=raw[:MAX_RAW_ANSWER_CHARS] if bad else None)
        for outcome in outcomes:
            staging.add_outcome(custom_id, outcome)
        return
    inner = (error or {}).get("error") or error or {}
    staging.add_request(
        custom_id, result_type, usage=None, billed=0.0,
        error_type=inner.get("type") if result_type == "errored" else None,
        error_message=inner.get("message") if result_type == "errored" else None,
    )


def apply_staging(store: StateStore, staging: _Staging, submission_key: str, *, classifier: str, batch_id: str | None,
                  model: str, final_status: str = "collected") -> Collected:
    """Write a submission's staged outcomes to requests, items and results, in one transaction."""
    wh = store.wh
    info = catalog.model_info(model)
    req, ans = staging.tables()
    req_name, ans_name = wh.temp_name("req"), wh.temp_name("ans")
    wh.con.register(req_name, req)
    wh.con.register(ans_name, ans)
    t = store.t
    in_price, out_price = info.input_usd_per_mtok, info.output_usd_per_mtok
    try:
        with wh.transaction():
            wh.execute(f"""
                UPDATE {t['cb_requests']} SET status = s.status, error_type = s.error_type,
                    error_message = s.error_message, input_tokens = s.input_tokens,
                    output_tokens = s.output_tokens, cache_write_5m_tokens = s.cache_write_5m_tokens,
                    cache_write_1h_tokens = s.cache_write_1h_tokens, cache_read_tokens = s.cache_read_tokens,
                    service_tier = s.service_tier, billed_usd = s.billed_usd, collected_at = now()::TIMESTAMP
                FROM {wh.q(req_name)} s
                WHERE {t['cb_requests']}.custom_id = s.custom_id AND {t['cb_requests']}.submission_key = ?""",
                [submission_key])
            # Requests the results never mentioned (should not happen) count as expired: retryable.
            wh.execute(f"""
                UPDATE {t['cb_requests']} SET status = 'expired', error_message = 'no result line for this request',
                    collected_at = now()::TIMESTAMP
                WHERE submission_key = ? AND status IN ('submitting', 'in_flight')""", [submission_key])
            # Item outcome: the answer's verdict, else the request's result type (missing if it succeeded).
            wh.execute(f"""
                CREATE OR REPLACE TEMP TABLE cb_tmp_item_outcomes AS
                SELECT i.custom_id, i.item_id, i.version, i.text_hash, i.attempt,
                       CASE WHEN r.status = 'succeeded' THEN coalesce(a.status, 'missing') ELSE r.status END AS status,
                       a.labels,
                       CASE WHEN r.status = 'succeeded' THEN coalesce(a.error, CASE WHEN a.status IS NULL THEN 'row missing from the answer' END)
                            ELSE r.error_message END AS error_message,
                       CASE WHEN r.status = 'succeeded' AND coalesce(a.status, 'missing') <> 'succeeded' THEN NULL
                            ELSE r.error_type END AS error_type,
                       CASE WHEN coalesce(a.status, 'missing') <> 'succeeded' THEN s.raw_answer END AS raw_answer,
                       coalesce(r.billed_usd, 0) / greatest(r.item_count, 1) AS billed_usd,
                       -- Naive: this text alone in a real-time uncached call: the prefix, plus its share
                       -- (by characters) of the request's other input tokens, plus a one-row answer.
                       CASE WHEN a.status = 'succeeded' THEN
                           ((p.prefix_actual
                             + greatest(p.total_input - p.prefix_actual, 0) * i.row_chars / greatest(p.chars, 1))
                            * {in_price} + a.answer_tokens * {out_price}) / 1e6
                       ELSE 0 END AS naive_usd
                FROM {t['cb_request_items']} i
                JOIN {t['cb_requests']} r USING (custom_id)
                LEFT JOIN {wh.q(req_name)} s USING (custom_id)
                LEFT JOIN {wh.q(ans_name)} a ON a.custom_id = i.custom_id AND a.item_id = i.item_id
                LEFT JOIN (
                    SELECT q.custom_id,
                           CASE WHEN coalesce(q.cache_read_tokens, 0) + coalesce(q.cache_write_5m_tokens, 0)
                                     + coalesce(q.cache_write_1h_tokens, 0) > 0
                                THEN q.cache_read_tokens + q.cache_write_5m_tokens + q.cache_write_1h_tokens
                                ELSE q.prefix_tokens END AS prefix_actual,
                           coalesce(q.input_tokens, 0) + coalesce(q.cache_read_tokens, 0)
                               + coalesce(q.cache_write_5m_tokens, 0) + coalesce(q.cache_write_1h_tokens, 0) AS total_input,
                           (SELECT sum(row_chars) FROM {t['cb_request_items']} c WHERE c.custom_id = q.custom_id) AS chars
                    FROM {t['cb_requests']} q WHERE q.submission_key = ?
                ) p ON p.custom_id = i.custom_id
                WHERE r.submission_key = ?""", [submission_key, submission_key])
            wh.execute(f"""
                UPDATE {t['cb_request_items']} SET status = o.status, billed_usd = o.billed_usd, naive_usd = o.naive_usd
                FROM cb_tmp_item_outcomes o
                WHERE {t['cb_request_items']}.custom_id = o.custom_id AND {t['cb_request_items']}.item_id = o.item_id""")
            wh.execute(f"""
                UPDATE {t['cb_requests']} SET naive_usd = o.naive
                FROM (SELECT custom_id, sum(naive_usd) AS naive FROM cb_tmp_item_outcomes GROUP BY custom_id) o
                WHERE {t['cb_requests']}.custom_id = o.custom_id""")
            # One result per (version, text); never replace a success with a later failure.
            wh.execute(f"""
                INSERT OR REPLACE INTO {t['cb_results']}
                    (version, text_hash, status, labels, raw_answer, error_type, error_message, custom_id,
                     batch_id, attempt, model, classifier, collected_at)
                SELECT o.version, o.text_hash, o.status, o.labels, o.raw_answer, o.error_type, o.error_message,
                       o.custom_id, ?, o.attempt, ?, ?, now()::TIMESTAMP
                FROM cb_tmp_item_outcomes o
                LEFT JOIN {t['cb_results']} prev ON prev.version = o.version AND prev.text_hash = o.text_hash
                WHERE prev.status IS DISTINCT FROM 'succeeded' OR o.status = 'succeeded'
                QUALIFY row_number() OVER (PARTITION BY o.version, o.text_hash ORDER BY o.status = 'succeeded' DESC) = 1""",
                [batch_id, model, classifier])
            wh.execute(
                f"UPDATE {t['cb_batches']} SET status = ?, collected_at = now()::TIMESTAMP WHERE submission_key = ?",
                [final_status, submission_key])
            totals = wh.fetchall(
                "SELECT count(DISTINCT custom_id), count(*), coalesce(sum(billed_usd), 0), coalesce(sum(naive_usd), 0) "
                "FROM cb_tmp_item_outcomes")[0]
            wh.execute("DROP TABLE IF EXISTS cb_tmp_item_outcomes")
    finally:
        wh.con.unregister(req_name)
        wh.con.unregister(ans_name)
    return Collected(requests=int(totals[0]), items=int(totals[1]), billed_usd=float(totals[2]), naive_usd=float(totals[3]))


RESULT_COLUMNS = {"custom_id": "VARCHAR", "result": "JSON"}


def stage_results_file(store: StateStore, staging: _Staging, path: Path, spec: prompts.PromptSpec, model: str,
                       item_counts: dict[str, int], *, chunk_rows: int = 20_000) -> None:
    """Parse a results JSONL with DuckDB and stage every line we know (others are logged, not trusted)."""
    source = store.wh.read_jsonl_sql(path, RESULT_COLUMNS)
    rel = store.wh.relation(f"""
        SELECT custom_id,
               json_extract_string(result, '$.type') AS type,
               json_extract(result, '$.message') AS message,
               json_extract(result, '$.error') AS error
        FROM {source}""")
    unknown = 0
    reader = rel.to_arrow_reader(chunk_rows)
    for record_batch in reader:
        cols = record_batch.to_pydict()
        for cid, kind, message, error in zip(cols["custom_id"], cols["type"], cols["message"], cols["error"]):
            if cid not in item_counts:
                unknown += 1
                continue
            stage_message(
                staging, spec, model, cid, item_counts[cid], kind,
                json.loads(message) if message else None,
                json.loads(error) if error else None,
            )
    if unknown:
        log.warning("%d result line(s) had custom_ids this submission never sent; ignored", unknown)


def collect_batch(store: StateStore, client: Any, sub: dict, spec: prompts.PromptSpec, *, classifier: str,
                  work_dir: str | None = None) -> Collected | None:
    """Refresh one submitted batch; if it ended, download and write its results. None if still running."""
    batch = batches.retrieve(client, sub["batch_id"])
    store.update_batch_status(sub["submission_key"], batch)
    if batch["processing_status"] != "ended":
        return None
    requests = store.requests_of(sub["submission_key"])
    item_counts = {cid: int(r["item_count"]) for cid, r in requests.items()}
    staging = _Staging()
    if batch.get("archived_at") or not batch.get("results_url"):
        # Results are gone (archived after 29 days): nothing was billed that we can see; retry the rows.
        for cid in item_counts:
            staging.add_request(cid, "expired", usage=None, billed=0.0,
                                error_message="results archived before they were collected")
    else:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="claude_batch_") as tmp:
            path = Path(tmp) / f"{sub['batch_id']}.jsonl"
            batches.download_results(client, sub["batch_id"], path, expected_lines=len(item_counts))
            checkpoint("after_download")
            stage_results_file(store, staging, path, spec, sub["model"], item_counts)
    got = apply_staging(store, staging, sub["submission_key"], classifier=classifier, batch_id=sub["batch_id"],
                        model=sub["model"])
    checkpoint("after_collect_write")
    return got


def stage_realtime(staging: _Staging, spec: prompts.PromptSpec, model: str,
                   answers: Iterable[tuple[str, int, str, dict | None, dict | None]]) -> None:
    for custom_id, item_count, result_type, message, error in answers:
        stage_message(staging, spec, model, custom_id, item_count, result_type, message, error)
