"""Spark's parser of Message Batches results: ``spark.read.json`` of the downloaded JSONL, then
``from_json``, ``explode`` and array functions turn every answer into (request, row id, label)
pairs and judge them, with no Python per row. The Spark twin of ``prompts.parse_answer`` and of the
DuckDB parser (``_duckdb_results``): the same rules, held to the same outcomes by the tests that run
both engines; answers it cannot read go back to the caller for the Python parser.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from .base import USAGE_SQL, ResultShape, StagedResults, quote_literal

log = logging.getLogger("claude_batch.collect")

_USAGE = ("STRUCT<input_tokens: BIGINT, output_tokens: BIGINT, cache_creation_input_tokens: BIGINT, "
          "cache_read_input_tokens: BIGINT, service_tier: STRING, "
          "cache_creation: STRUCT<ephemeral_5m_input_tokens: BIGINT, ephemeral_1h_input_tokens: BIGINT>, "
          "output_tokens_details: STRUCT<thinking_tokens: BIGINT>>")
# A result line's ``result`` as read (the rest is ignored); a tool call's input stays JSON text.
_RESULT = (f"STRUCT<type: STRING, message: STRUCT<content: ARRAY<STRUCT<type: STRING, text: STRING, input: STRING>>, "
           f"stop_reason: STRING, usage: {_USAGE}>, error: STRUCT<error: STRUCT<type: STRING, message: STRING>>>")


def stage(wh: Any, path: str, *, requests_table: str, submission_key: str, shape: ResultShape,
          request_columns: Mapping[str, str]) -> StagedResults:
    """Stage a results file's requests (``cb_tmp_req``) and return the SQL of its rows' outcomes,
    and the answers SQL could not read (for the Python parser, into ``cb_tmp_ans``)."""
    source = wh.read_jsonl_sql(path, {"custom_id": "VARCHAR", "result": "JSON"})
    key = "rows" if shape.answer_format == "keyed" else "groups"
    # One typed parse per line; the answer is the one block we asked for (a forced tool call, or
    # JSON text) when it holds the groups (rows) array; thinking blocks come first [H55].
    wh.create_temp_table("cb_tmp_lines", f"""
        SELECT ln, custom_id, item_count, type, error_type, error_message, u, raw,
               CASE WHEN get_json_object(candidate, '$.{key}') IS NOT NULL
                         AND startswith(ltrim(get_json_object(candidate, '$.{key}')), '[')
                    THEN candidate END AS answer
        FROM (
            SELECT ln, custom_id, item_count, type, error_type, error_message, u,
                   CASE WHEN type = 'succeeded' AND size(blocks) = 1 AND coalesce(stop_reason, '') <> 'max_tokens' THEN
                       CASE blocks[0].type
                            WHEN 'tool_use' THEN blocks[0].input
                            WHEN 'text' THEN CASE WHEN try_parse_json(blocks[0].text) IS NOT NULL
                                                  THEN blocks[0].text END END
                   END AS candidate,
                   CASE blocks[0].type WHEN 'tool_use' THEN blocks[0].input ELSE blocks[0].text END AS raw
            FROM (
                SELECT ln, custom_id, item_count, res.type AS type, res.error.error.type AS error_type,
                       res.error.error.message AS error_message, res.message.usage AS u,
                       res.message.stop_reason AS stop_reason,
                       CASE WHEN size(res.message.content) = 1 THEN res.message.content
                            ELSE filter(res.message.content, b -> b.type IN ('text', 'tool_use')) END AS blocks
                FROM (SELECT CAST(row_number() OVER (ORDER BY l.custom_id) AS INT) AS ln, l.custom_id, r.item_count,
                             from_json(l.result, '{_RESULT}') AS res
                      FROM {source} l
                      LEFT JOIN {requests_table} r ON r.custom_id = l.custom_id AND r.submission_key = ?) x
            ) z
        ) y""", [submission_key])
    unknown = wh.scalar("SELECT count(*) FROM cb_tmp_lines WHERE item_count IS NULL")
    if unknown:
        log.warning("%d result line(s) had custom_ids this submission never sent; ignored", unknown)
        wh.create_temp_table("cb_tmp_lines", "SELECT * FROM cb_tmp_lines WHERE item_count IS NOT NULL")
    usage = USAGE_SQL
    billed = shape.billed_sql(usage)
    cols = list(request_columns)
    wh.create_temp_table("cb_tmp_req", f"""
        SELECT * FROM (
            SELECT ln, custom_id, type,
                   CASE WHEN type = 'errored' THEN error_type END,
                   CASE WHEN type = 'errored' THEN error_message END,
                   {usage['input_tokens']}, {usage['output_tokens']}, {usage['cache_write_5m_tokens']},
                   {usage['cache_write_1h_tokens']}, {usage['cache_read_tokens']},
                   CASE WHEN type = 'succeeded' THEN {usage['service_tier']} END,
                   CAST(CASE WHEN type = 'succeeded' THEN {billed} ELSE 0 END AS DOUBLE),
                   CASE WHEN answer IS NOT NULL THEN left(raw, {int(shape.max_raw_chars)}) END,
                   {usage['thinking_tokens']}
            FROM cb_tmp_lines
            WHERE type <> 'succeeded' OR answer IS NOT NULL
        ) AS s({', '.join(cols)})""")
    odd = []
    if wh.scalar("SELECT count(*) FROM cb_tmp_lines WHERE type = 'succeeded' AND answer IS NULL"):
        odd = wh.fetchall(f"""
            SELECT l.ln, l.custom_id, l.item_count, get_json_object(f.result, '$.message')
            FROM cb_tmp_lines l JOIN {source} f ON f.custom_id = l.custom_id
            WHERE l.type = 'succeeded' AND l.answer IS NULL""")
    return StagedResults(outcomes_sql(shape) + " UNION ALL SELECT * FROM cb_tmp_ans",
                         [(int(ln), str(cid), int(n), str(msg)) for ln, cid, n, msg in odd])


def outcomes_sql(spec: ResultShape) -> str:
    """Every (request, row) an answer in ``cb_tmp_lines`` names, judged as ``prompts.parse_answer`` does."""
    answers = "FROM cb_tmp_lines WHERE answer IS NOT NULL"
    # A label read as STRING: a JSON string's value; any other JSON value's text (never in the set).
    groups = f"""SELECT ln, item_count, g.label AS label_json, g.ids AS ids
                 FROM (SELECT ln, item_count,
                              explode(from_json(answer, 'groups ARRAY<STRUCT<label: STRING, ids: ARRAY<STRING>>>').groups) AS g
                       {answers}) x"""
    if spec.answer_format == "keyed":
        field = "labels" if spec.multi_label else "label"
        value = "ARRAY<STRING>" if spec.multi_label else "STRING"
        entries = f"""SELECT ln, item_count, explode(from_json(answer, 'rows ARRAY<STRUCT<id: STRING, {field}: {value}>>').rows) AS r
                      {answers}"""
        if spec.multi_label:
            groups = f"""SELECT ln, item_count, l AS label_json, array(r.id) AS ids
                         FROM (SELECT ln, item_count, r, explode(r.labels) AS l FROM ({entries}) e) f"""
        else:
            groups = f"SELECT ln, item_count, r.label AS label_json, array(r.id) AS ids FROM ({entries}) e"
    names = "array(" + ", ".join(quote_literal(n) for n in spec.label_names) + ")"
    toks = "array(" + ", ".join(str(int(n)) for n in spec.label_tokens) + ")"
    named = "jd.n_good > 0"
    if spec.multi_label:
        labels = f"transform(jd.positions, x -> {names}[x])"
        answer_tokens = f"aggregate(transform(jd.positions, x -> {toks}[x]), 0, (a, b) -> a + b)"
        several = "false"
    else:
        labels = f"array({names}[jd.positions[0]])"
        answer_tokens = f"{toks}[jd.positions[0]]"
        several = "jd.n_good > 1"
    several_msg = (f"concat('several labels (', jd.n_good, ', e.g. ', {names}[jd.positions[0]], ' and ', "
                   f"{names}[jd.positions[size(jd.positions) - 1]], ') for a single-label classifier')")
    return f"""
        SELECT jd.ln, CAST(jd.item_id AS INT) AS item_id,
               CASE WHEN jd.has_bad THEN 'invalid_output'
                    WHEN NOT ({named}) THEN 'missing'
                    WHEN {several} THEN 'invalid_output'
                    ELSE 'succeeded' END AS status,
               CASE WHEN {named} AND NOT ({several}) THEN {labels} END AS labels,
               CASE WHEN jd.has_bad THEN concat('label ', coalesce(concat(chr(39), jd.bad_label, chr(39)), 'None'),
                                                ' is not one of the allowed labels')
                    WHEN NOT ({named}) THEN 'row missing from the answer'
                    WHEN {several} THEN {several_msg}
                    END AS error,
               CAST(CASE WHEN {named} AND NOT ({several}) THEN {answer_tokens} ELSE 0 END AS INT) AS answer_tokens
        FROM (
            SELECT ln, item_id, bool_or(pos IS NULL) AS has_bad,
                   min(label) FILTER (WHERE pos IS NULL) AS bad_label, count(DISTINCT pos) AS n_good,
                   array_sort(collect_set(pos)) AS positions
            FROM (
                SELECT ln, label, pos, item_id FROM (
                    SELECT ln, item_count, label, pos,
                           CASE WHEN id RLIKE '^[0-9]+$' THEN try_cast(id AS BIGINT) END AS item_id
                    FROM (SELECT ln, item_count, label, pos, explode(ids) AS id
                          FROM (SELECT ln, item_count, label, ids,
                                       nullif(array_position({names}, label), 0) - 1 AS pos
                                FROM (SELECT ln, item_count, ids, label_json AS label
                                      FROM ({groups}) g0) g1) u) c
                ) p WHERE item_id BETWEEN 1 AND item_count
            ) pairs
            GROUP BY ln, item_id
        ) jd"""
