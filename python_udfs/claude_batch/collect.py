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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import batches, catalog, cost, logs, prompts, tmpfiles, tokens
from ._crashpoints import checkpoint
from .state import StateStore
from .statuses import BatchStatus, Outcome
from .warehouse import Warehouse, quote_literal


MAX_RAW_ANSWER_CHARS = 4_000
# Up to this many labels, a row's labels are judged from one bit mask (a bit per label, bit 63 for
# one outside the set); more take the general aggregates.
BIT_LABELS = 63

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


_USAGE_SHAPE = {
    "input_tokens": "BIGINT", "output_tokens": "BIGINT", "cache_creation_input_tokens": "BIGINT",
    "cache_read_input_tokens": "BIGINT", "service_tier": "VARCHAR",
    "cache_creation": {"ephemeral_5m_input_tokens": "BIGINT", "ephemeral_1h_input_tokens": "BIGINT"},
    "output_tokens_details": {"thinking_tokens": "BIGINT"},
}
# What a result line's ``result`` is read as (the rest of it is ignored); an answer's tool input stays JSON.
_RESULT_SHAPE = json.dumps({
    "type": "VARCHAR",
    "message": {"content": [{"type": "VARCHAR", "text": "VARCHAR", "input": "JSON"}], "stop_reason": "VARCHAR",
                "usage": _USAGE_SHAPE},
    "error": {"error": {"type": "VARCHAR", "message": "VARCHAR"}},
}).replace("'", "''")


@dataclass
class Collected:
    requests: int = 0
    items: int = 0
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
    wh.execute("""CREATE OR REPLACE TEMP TABLE cb_tmp_req (ln INTEGER, custom_id VARCHAR, status VARCHAR, error_type VARCHAR,
        error_message VARCHAR, input_tokens BIGINT, output_tokens BIGINT, cache_write_5m_tokens BIGINT,
        cache_write_1h_tokens BIGINT, cache_read_tokens BIGINT, service_tier VARCHAR, billed_usd DOUBLE,
        raw_answer VARCHAR, thinking_tokens BIGINT)""")
    wh.execute("""CREATE OR REPLACE TEMP TABLE cb_tmp_ans (ln INTEGER, item_id INTEGER, status VARCHAR,
        labels VARCHAR[], error VARCHAR, answer_tokens INTEGER)""")


def _load_python_staging(wh: Warehouse, staging: Staging) -> None:
    req, ans = staging.tables()
    for name, table in (("cb_tmp_req", req), ("cb_tmp_ans", ans)):
        if table.num_rows == 0:
            continue
        view = wh.temp_name("stg")
        wh.con.register(view, table)
        try:
            wh.execute(f"INSERT INTO {name} SELECT * FROM {wh.q(view)}")
        finally:
            wh.con.unregister(view)


# ---------------------------------------------------------------------------- batch results, in SQL


def stage_results_file(store: StateStore, path: Path, spec: prompts.PromptSpec, model: str,
                       submission_key: str) -> str:
    """Parse a results JSONL with DuckDB: stage its requests (``cb_tmp_req``) and return the SQL of
    its rows' outcomes (ln, item_id, status, labels, error, answer_tokens), which the write reads
    without an intermediate table. Odd answers go through Python into ``cb_tmp_ans``, part of that SQL."""
    wh, t = store.wh, store.t
    source = wh.read_jsonl_sql(path, {"custom_id": "VARCHAR", "result": "JSON"})
    # One typed parse of each line (from_json: a field of an unexpected type reads as NULL, it does
    # not fail the batch); the answer is kept as JSON when it is the one answer block we asked for
    # (a forced tool call, or JSON text) and holds a groups array (a rows array in the keyed answer
    # format). The answer is found by block type: a model that thinks puts thinking blocks first [H55].
    wh.execute(f"""
        CREATE OR REPLACE TEMP TABLE cb_tmp_lines AS
        SELECT ln, custom_id, item_count, type, error_type, error_message, u, raw,
               CASE WHEN json_type(candidate, '$.{"rows" if spec.answer_format == "keyed" else "groups"}') = 'ARRAY'
                    THEN candidate END AS answer
        FROM (
            SELECT ln, custom_id, item_count, type, error_type, error_message, u,
                   CASE WHEN type = 'succeeded' AND len(blocks) = 1 AND coalesce(stop_reason, '') <> 'max_tokens' THEN
                       CASE blocks[1].type
                            WHEN 'tool_use' THEN blocks[1].input
                            WHEN 'text' THEN CASE WHEN json_valid(blocks[1].text) THEN CAST(blocks[1].text AS JSON) END END
                   END AS candidate,
                   CASE blocks[1].type WHEN 'tool_use' THEN CAST(blocks[1].input AS VARCHAR) ELSE blocks[1].text END AS raw
            FROM (
                SELECT ln, custom_id, item_count, res.type AS type, res.error.error.type AS error_type,
                       res.error.error.message AS error_message, res.message.usage AS u,
                       res.message.stop_reason AS stop_reason,
                       CASE WHEN len(res.message.content) = 1 THEN res.message.content
                            ELSE list_filter(res.message.content, lambda b: b.type IN ('text', 'tool_use')) END AS blocks
                FROM (SELECT CAST(row_number() OVER () AS INTEGER) AS ln, l.custom_id, r.item_count,
                             from_json(l.result, '{_RESULT_SHAPE}') AS res
                      FROM {source} l
                      LEFT JOIN {t['cb_requests']} r ON r.custom_id = l.custom_id AND r.submission_key = ?) x
            ) z
        ) y""", [submission_key])
    # One read of the file: lines whose custom_id this submission never sent are counted, then dropped.
    unknown = wh.scalar("SELECT count(*) FROM cb_tmp_lines WHERE item_count IS NULL")
    if unknown:
        logs.warn(f"{unknown} result line(s) had custom_ids this submission never sent; ignored")
        wh.execute("DELETE FROM cb_tmp_lines WHERE item_count IS NULL")

    # Usage was read once per line into a typed struct (``u``); cache writes by TTL when the API
    # breaks them down, else the single cache_creation_input_tokens figure counts as 5-minute writes.
    usage = {
        "input_tokens": "coalesce(u.input_tokens, 0)",
        "output_tokens": "coalesce(u.output_tokens, 0)",
        "cache_write_5m_tokens": """CASE WHEN u.cache_creation IS NULL THEN coalesce(u.cache_creation_input_tokens, 0)
            ELSE coalesce(u.cache_creation.ephemeral_5m_input_tokens, 0) END""",
        "cache_write_1h_tokens": "coalesce(u.cache_creation.ephemeral_1h_input_tokens, 0)",
        "cache_read_tokens": "coalesce(u.cache_read_input_tokens, 0)",
        "service_tier": "coalesce(u.service_tier, 'standard')",
        "thinking_tokens": "coalesce(u.output_tokens_details.thinking_tokens, 0)",
    }
    _create_staging_tables(wh)
    billed = cost.billed_usd_sql(model, usage)
    # The raw answer is staged for every request; the write keeps it only on rows that did not succeed.
    wh.execute(f"""
        INSERT INTO cb_tmp_req
        SELECT ln, custom_id, type,
               CASE WHEN type = 'errored' THEN error_type END,
               CASE WHEN type = 'errored' THEN error_message END,
               {usage['input_tokens']}, {usage['output_tokens']}, {usage['cache_write_5m_tokens']},
               {usage['cache_write_1h_tokens']}, {usage['cache_read_tokens']},
               CASE WHEN type = 'succeeded' THEN {usage['service_tier']} END,
               CASE WHEN type = 'succeeded' THEN {billed} ELSE 0 END,
               CASE WHEN answer IS NOT NULL THEN left(raw, {MAX_RAW_ANSWER_CHARS}) END,
               {usage['thinking_tokens']}
        FROM cb_tmp_lines
        WHERE type <> 'succeeded' OR answer IS NOT NULL""")
    # Answers SQL could not read (several blocks, fences, cut by max_tokens): the Python parser, on
    # the message as the API sent it (a second read of the file, for these lines only).
    odd = []
    if wh.scalar("SELECT count(*) FROM cb_tmp_lines WHERE type = 'succeeded' AND answer IS NULL"):
        odd = wh.fetchall(f"""
            SELECT l.ln, l.custom_id, l.item_count, CAST(json_extract(f.result, '$.message') AS VARCHAR)
            FROM cb_tmp_lines l JOIN {source} f USING (custom_id)
            WHERE l.type = 'succeeded' AND l.answer IS NULL""")
    if odd:
        staging = Staging()
        for ln, custom_id, item_count, message in odd:
            stage_message(staging, spec, model, custom_id, int(item_count), Outcome.SUCCEEDED, json.loads(message), None,
                          ln=int(ln))
        _load_python_staging(wh, staging)
    return _outcomes_sql(spec) + " UNION ALL SELECT * FROM cb_tmp_ans"


def _outcomes_sql(spec: prompts.PromptSpec) -> str:
    """Every (request, row) an answer in ``cb_tmp_lines`` names, judged: the SQL twin of
    ``prompts.parse_answer`` (tests/unit/test_collect_parsers.py holds them to the same rules)."""
    # ids read as text: a JSON number and a digit string alike ('3'); anything else fails the digit test.
    answers = "FROM cb_tmp_lines WHERE answer IS NOT NULL"
    # (request, group) rows, a group being a struct of its label (JSON) and ids (text).
    groups = f"""SELECT ln, item_count, unnest(from_json(answer, '{{"groups":[{{"label":"JSON","ids":["VARCHAR"]}}]}}').groups) AS g
                 {answers}"""
    if spec.answer_format == "keyed":
        # Each label an entry gives its row is a group of that one id (prompts._keyed_pairs):
        # single-label, the entry's `label`; multi-label, each element of its `labels` (an entry
        # whose `labels` is not a list gives none: unnest of NULL is no rows).
        value = '["JSON"]' if spec.multi_label else '"JSON"'
        entries = f"""SELECT ln, item_count, unnest(from_json(answer, '{{"rows":[{{"id":"VARCHAR","{"labels" if spec.multi_label else "label"}":{value}}}]}}').rows) AS r
                      {answers}"""
        if spec.multi_label:
            groups = f"""SELECT ln, item_count, {{'label': l, 'ids': [r.id]}} AS g
                         FROM (SELECT ln, item_count, r, unnest(r.labels) AS l FROM ({entries}) e) f"""
        else:
            groups = f"SELECT ln, item_count, {{'label': r.label, 'ids': [r.id]}} AS g FROM ({entries}) e"
    names = "[" + ", ".join(quote_literal(n) for n in spec.label_names) + "]"
    toks = "[" + ", ".join(str(single_answer_tokens(n)) for n in spec.label_names) + "]"
    n_labels = len(spec.label_names)
    if n_labels <= BIT_LABELS:
        # One aggregate per row: a bit per label it was given (bit 63: a label outside the set), and
        # the smallest such outside label, for the message. Everything else is read off the bits.
        per_item = f"""
            SELECT ln, item_id, bad_label, bits >> 63 = 1 AS has_bad, good, bit_count(good) AS n_good,
                   CASE WHEN bit_count(good) = 1 THEN CAST(log2(good) AS INTEGER) END AS only_pos,
                   CASE WHEN {'true' if spec.multi_label else 'bit_count(good) > 1'}
                        THEN list_filter(range({n_labels}), lambda i: (good >> CAST(i AS UBIGINT)) & 1 = 1) END AS positions
            FROM (SELECT ln, item_id, bad_label, bits, bits & {(1 << 63) - 1}::UBIGINT AS good
                  FROM (SELECT ln, item_id, bit_or(CAST(1 AS UBIGINT) << coalesce(pos, 63)) AS bits,
                               min(label) FILTER (WHERE pos IS NULL) AS bad_label
                        FROM pairs GROUP BY ln, item_id) b) g"""
    else:
        per_item = f"""
            SELECT ln, item_id, bool_or(pos IS NULL) AS has_bad,
                   min(label) FILTER (WHERE pos IS NULL) AS bad_label, count(DISTINCT pos) AS n_good,
                   CASE WHEN count(DISTINCT pos) = 1 THEN min(pos) END AS only_pos,
                   CASE WHEN {'true' if spec.multi_label else 'count(DISTINCT pos) > 1'}
                        THEN list_sort(list(DISTINCT pos) FILTER (WHERE pos IS NOT NULL)) END AS positions
            FROM pairs GROUP BY ln, item_id"""
    named = "pi.n_good > 0"  # at least one label from the set (labels are kept even beside an outside one)
    if spec.multi_label:
        labels = f"list_transform(pi.positions, lambda x: {names}[x + 1])"
        answer_tokens = f"list_sum(list_transform(pi.positions, lambda x: {toks}[x + 1]))"
        several = "false"
    else:
        labels = f"[{names}[pi.only_pos + 1]]"
        answer_tokens = f"{toks}[pi.only_pos + 1]"
        several = "pi.n_good > 1"
    several_msg = (
        f"'several labels (' || pi.n_good || ', e.g. ' || {names}[pi.positions[1] + 1] || ' and ' "
        f"|| {names}[pi.positions[-1] + 1] || ') for a single-label classifier'"
    )
    return f"""
        WITH grp AS (  -- one row per group: its label (a string, else NULL) and its position in the set
            SELECT ln, item_count, label,
                   nullif(coalesce(list_position({names}, label), 0), 0) - 1 AS pos, ids
            FROM (SELECT ln, item_count,
                         CASE WHEN json_type(g.label) = 'VARCHAR' THEN json_extract_string(g.label, '$') END AS label,
                         g.ids
                  FROM ({groups}) x) y
        ),
        pairs AS (  -- every (request, row id, label) named; ids must be whole numbers (or digit strings)
            SELECT ln, label, pos, item_id FROM (
                -- A canonical number reads back as itself; only the rest ('01', ' 2', '2.0') needs the
                -- digit test, which costs more than the cast.
                SELECT ln, item_count, label, pos,
                       CASE WHEN CAST(n AS VARCHAR) = id OR regexp_full_match(id, '[0-9]+') THEN n END AS item_id
                FROM (SELECT ln, item_count, label, pos, id, TRY_CAST(id AS BIGINT) AS n
                      FROM (SELECT ln, item_count, label, pos, unnest(ids) AS id FROM grp) u) c
            ) p
            WHERE item_id BETWEEN 1 AND item_count
        ),
        per_item AS ({per_item})
        -- Rows the answer names; a row it does not name is 'missing' (apply_staging).
        SELECT pi.ln, CAST(pi.item_id AS INTEGER) AS item_id,
               CASE WHEN pi.has_bad THEN 'invalid_output'
                    WHEN NOT ({named}) THEN 'missing'
                    WHEN {several} THEN 'invalid_output'
                    ELSE 'succeeded' END AS status,
               CASE WHEN {named} AND NOT ({several}) THEN {labels} END AS labels,
               CASE WHEN pi.has_bad THEN 'label ' || coalesce(quote_bad, 'None') || ' is not one of the allowed labels'
                    WHEN NOT ({named}) THEN 'row missing from the answer'
                    WHEN {several} THEN {several_msg}
                    END AS error,
               CAST(CASE WHEN {named} AND NOT ({several}) THEN {answer_tokens} ELSE 0 END AS INTEGER)
                   AS answer_tokens
        FROM (SELECT *, chr(39) || bad_label || chr(39) AS quote_bad FROM per_item) pi"""


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
    with wh.transaction():
        wh.execute(f"""
            UPDATE {t['cb_requests']} SET status = s.status, error_type = s.error_type,
                error_message = s.error_message, input_tokens = s.input_tokens,
                output_tokens = s.output_tokens, cache_write_5m_tokens = s.cache_write_5m_tokens,
                cache_write_1h_tokens = s.cache_write_1h_tokens, cache_read_tokens = s.cache_read_tokens,
                service_tier = s.service_tier, billed_usd = s.billed_usd, thinking_tokens = s.thinking_tokens,
                collected_at = now()::TIMESTAMP
            FROM cb_tmp_req s
            WHERE {t['cb_requests']}.custom_id = s.custom_id AND {t['cb_requests']}.submission_key = ?""",
            [submission_key])
        # Requests the results never mentioned (should not happen) count as expired: retryable.
        wh.execute(f"""
            UPDATE {t['cb_requests']} SET status = 'expired', error_message = 'no result line for this request',
                collected_at = now()::TIMESTAMP
            WHERE submission_key = ? AND status IN ('submitting', 'in_flight')""", [submission_key])
        # Requests planned by an older release have no row_chars yet (the naive share needs it).
        wh.execute(f"""
            UPDATE {t['cb_requests']} SET row_chars = c.chars
            FROM (SELECT custom_id, sum(row_chars) AS chars FROM {t['cb_request_items']}
                  WHERE custom_id IN (SELECT custom_id FROM {t['cb_requests']}
                                      WHERE submission_key = ? AND row_chars IS NULL)
                  GROUP BY custom_id) c
            WHERE {t['cb_requests']}.custom_id = c.custom_id""", [submission_key])
        # Item outcomes go straight into the append-only results (cb_current_results picks the one
        # that counts: a success wins over later failures): the answer's verdict, else the request's
        # result type (missing if it succeeded). No intermediate table: at a million rows, writing the
        # outcomes twice cost as much as the rest of the collect.
        wh.execute(f"""
            INSERT INTO {t['cb_results']}
                (version, text_hash, status, labels, raw_answer, error_type, error_message, custom_id,
                 batch_id, attempt, model, classifier, collected_at, billed_usd, naive_usd)
            WITH a AS ({outcomes_sql})
            SELECT i.version, i.text_hash,
                   CASE WHEN r.status = 'succeeded' THEN coalesce(a.status, 'missing') ELSE r.status END,
                   a.labels,
                   CASE WHEN coalesce(a.status, 'missing') <> 'succeeded' THEN r.raw_answer END,
                   CASE WHEN r.status = 'succeeded' AND coalesce(a.status, 'missing') <> 'succeeded' THEN NULL
                        ELSE r.error_type END,
                   CASE WHEN r.status = 'succeeded' THEN coalesce(a.error, CASE WHEN a.status IS NULL THEN 'row missing from the answer' END)
                        ELSE r.error_message END,
                   i.custom_id, ?, i.attempt, ?, ?, now()::TIMESTAMP,
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
                FROM {t['cb_requests']} q LEFT JOIN cb_tmp_req s USING (custom_id) WHERE q.submission_key = ?
            ) r USING (custom_id)
            LEFT JOIN a ON a.ln = r.ln AND a.item_id = i.item_id""",
            [batch_id, model, classifier, submission_key])
        # This submission's rows just written (its custom_ids carry its key, and now() is this
        # transaction's start, so older results of the same texts are not counted), summed per
        # request once: the requests' naive cost and the totals both come from it.
        wh.execute(f"""
            CREATE OR REPLACE TEMP TABLE cb_tmp_written AS
            SELECT custom_id, count(*) AS items, sum(billed_usd) AS billed, sum(naive_usd) AS naive
            FROM {t['cb_results']} WHERE collected_at = now()::TIMESTAMP AND starts_with(custom_id, ?)
            GROUP BY custom_id""", [submission_key + "-"])
        wh.execute(f"""
            UPDATE {t['cb_requests']} SET naive_usd = w.naive FROM cb_tmp_written w
            WHERE {t['cb_requests']}.custom_id = w.custom_id""")
        wh.execute(
            f"UPDATE {t['cb_batches']} SET status = ?, collected_at = now()::TIMESTAMP WHERE submission_key = ?",
            [final_status, submission_key])
        totals = wh.fetchall(
            "SELECT count(*), coalesce(sum(items), 0), coalesce(sum(billed), 0), coalesce(sum(naive), 0) "
            "FROM cb_tmp_written")[0]
    for name in ("cb_tmp_req", "cb_tmp_ans", "cb_tmp_written", "cb_tmp_lines"):
        wh.execute(f"DROP TABLE IF EXISTS {name}")
    return Collected(requests=int(totals[0]), items=int(totals[1]), billed_usd=float(totals[2]), naive_usd=float(totals[3]))


def collect_batch(store: StateStore, client: Any, sub: dict, spec: prompts.PromptSpec, *, classifier: str,
                  work_dir: str | None = None) -> Collected | None:
    """Refresh one submitted batch; if it ended, download and write its results. None if still running."""
    batch = batches.retrieve(client, sub["batch_id"])
    store.update_batch_status(sub["submission_key"], batch)
    if batch["processing_status"] != BatchStatus.ENDED:
        return None
    expected = int(sub["request_count"])
    if batch.get("archived_at") or not batch.get("results_url"):
        # Results are gone (archived after 29 days): nothing we can see was billed; retry the rows.
        staging = Staging()
        for (cid,) in store.wh.fetchall(
            f"SELECT custom_id FROM {store.t['cb_requests']} WHERE submission_key = ?", [sub["submission_key"]]
        ):
            staging.add_request(cid, Outcome.EXPIRED, usage=None, billed=0.0,
                                error_message="results archived before they were collected")
        got = apply_staging(store, staging, sub["submission_key"], classifier=classifier,
                            batch_id=sub["batch_id"], model=sub["model"])
    else:
        with tmpfiles.temp_dir("results", dir=work_dir) as tmp:  # named after this process (tmpfiles.sweep)
            path = Path(tmp) / f"{sub['batch_id']}.jsonl"
            batches.download_results(client, sub["batch_id"], path, expected_lines=expected)
            checkpoint("after_download")
            outcomes = stage_results_file(store, path, spec, sub["model"], sub["submission_key"])
            got = apply_staging(store, None, sub["submission_key"], classifier=classifier,
                                batch_id=sub["batch_id"], model=sub["model"], outcomes_sql=outcomes)
    checkpoint("after_collect_write")
    return got
