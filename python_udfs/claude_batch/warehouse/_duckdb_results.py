"""DuckDB's parser of Message Batches results: ``read_json`` and its JSON functions explode every
answer into (request, row id, label) pairs and judge the labels, so a million rows are ingested at
DuckDB's speed with no Python work per row. The SQL twin of ``prompts.parse_answer``
(tests/unit/test_collect_parsers.py holds them to the same rules); answers it cannot read are handed
back to the caller for the Python parser.
"""

from __future__ import annotations

import json
from typing import Any

from .base import USAGE_SQL, ResultShape, StagedResults, quote_literal

# Up to this many labels, a row's labels are judged from one bit mask (a bit per label, bit 63 for
# one outside the set); more take the general aggregates.
BIT_LABELS = 63

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


def stage(wh: Any, path: str, *, requests_table: str, submission_key: str, shape: ResultShape) -> StagedResults:
    """Parse a results JSONL with DuckDB: stage its requests (``cb_tmp_req``) and return the SQL of
    its rows' outcomes (ln, item_id, status, labels, error, answer_tokens), which the write reads
    without an intermediate table, and the odd answers for the Python parser (``cb_tmp_ans``)."""
    spec = shape
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
                      LEFT JOIN {requests_table} r ON r.custom_id = l.custom_id AND r.submission_key = ?) x
            ) z
        ) y""", [submission_key])
    # One read of the file: lines whose custom_id this submission never sent are counted, then dropped.
    unknown = wh.scalar("SELECT count(*) FROM cb_tmp_lines WHERE item_count IS NULL")
    if unknown:
        wh.execute("DELETE FROM cb_tmp_lines WHERE item_count IS NULL")

    usage = USAGE_SQL  # usage was read once per line into a typed struct (``u``)
    billed = shape.billed_sql(usage)
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
               CASE WHEN answer IS NOT NULL THEN left(raw, {int(shape.max_raw_chars)}) END,
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
    return StagedResults(_outcomes_sql(shape) + " UNION ALL SELECT * FROM cb_tmp_ans",
                         [(int(ln), str(cid), int(n), str(msg)) for ln, cid, n, msg in odd], int(unknown or 0))


def _outcomes_sql(spec: ResultShape) -> str:
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
    toks = "[" + ", ".join(str(int(n)) for n in spec.label_tokens) + "]"
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
