"""The Spark engine's own operations on a real local Spark, held to the DuckDB engine's answers:
text keys, the results parser (one results file, every kind of line, both engines), and the
single-table writes (versions a later session finds, a half-written version ignored)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from claude_batch.warehouse import Warehouse
from claude_batch.warehouse.base import STAGE_REQUESTS, ResultShape

TEXTS = ["I love it", "", "Ünïcödé ✓ 日本語", "a 'quoted' \"text\"\nwith a newline", "x" * 5000]


def test_text_keys_are_the_same_on_both_engines(spark):
    duck = Warehouse(duckdb.connect())
    sw = Warehouse(spark, state_schema="unused")
    assert type(sw).__name__ == "SparkWarehouse"
    for text in TEXTS:
        lit = "'" + text.replace("'", "''") + "'"
        d = str(duck.scalar(f"SELECT {duck.hash_sql(lit)}"))
        s = sw.scalar(f"SELECT {sw.hash_sql(lit)}")
        assert s == d, text


def _message(content: list, stop: str = "end_turn") -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-5-5", "content": content,
            "stop_reason": stop, "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 0,
                                           "cache_creation_input_tokens": 0, "service_tier": "batch"}}


def _tool(answer: dict) -> list:
    return [{"type": "tool_use", "id": "t1", "name": "classify", "input": answer}]


LINES = [
    # every row labelled, one from outside the set, one row missing, ids as strings and numbers
    ("s-000000", 3, {"type": "succeeded", "message": _message(_tool(
        {"groups": [{"label": "positive", "ids": [1, "2"]}, {"label": "bogus", "ids": [2]}]}))}),
    # a JSON answer as text; row 2 given two labels (single-label: invalid)
    ("s-000001", 2, {"type": "succeeded", "message": _message([{"type": "text", "text": json.dumps(
        {"groups": [{"label": "negative", "ids": [1, 2]}, {"label": "neutral", "ids": [2]}]})}])}),
    # a thinking block first, then the answer
    ("s-000002", 1, {"type": "succeeded", "message": _message(
        [{"type": "thinking", "thinking": "hm", "signature": "x"}, *_tool({"groups": [{"label": "neutral", "ids": [1]}]})])}),
    # an answer SQL cannot read (a code fence): handed back for the Python parser
    ("s-000003", 1, {"type": "succeeded", "message": _message(
        [{"type": "text", "text": "```json\n{\"groups\": [{\"label\": \"positive\", \"ids\": [1]}]}\n```"}])}),
    ("s-000004", 2, {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}}),
    ("s-000005", 1, {"type": "expired"}),
    ("zz-unknown", 1, {"type": "expired"}),  # a custom_id this submission never sent: ignored
]


def _stage(wh, path: Path) -> tuple[list, list, list]:
    wh.create_temp_table("cb_test_requests", "SELECT * FROM (VALUES " + ", ".join(
        f"('{cid}', 'sub', {n})" for cid, n, _ in LINES if not cid.startswith("zz")) +
        ") AS t(custom_id, submission_key, item_count)")
    shape = ResultShape("grouped", False, ("positive", "negative", "neutral"), (7, 8, 9),
                        lambda u: f"({u['input_tokens']} + {u['output_tokens']}) * 0.000001")
    staged = wh.stage_batch_results(str(path), requests_table="cb_test_requests", submission_key="sub", shape=shape)
    req = [(*r[:-1], json.loads(r[-1]) if r[-1] else None) for r in wh.fetchall(f"SELECT custom_id, status, error_type, error_message, input_tokens, output_tokens, "
                      f"service_tier, billed_usd, raw_answer FROM {STAGE_REQUESTS} ORDER BY custom_id")]
    outcomes = wh.fetchall(f"""SELECT r.custom_id, o.item_id, o.status, o.labels, o.error, o.answer_tokens
                               FROM ({staged.outcomes_sql}) o JOIN {STAGE_REQUESTS} r ON r.ln = o.ln
                               ORDER BY 1, 2""")
    odd = sorted((cid, n, json.loads(msg)["content"][0]["text"]) for _, cid, n, msg in staged.odd)
    return req, [(c, i, s, list(lab) if lab is not None else None, e, t) for c, i, s, lab, e, t in outcomes], odd


def test_results_file_is_parsed_as_on_duckdb(spark, tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps({"custom_id": cid, "result": res}) + "\n" for cid, _, res in LINES))
    duck = _stage(Warehouse(duckdb.connect()), path)
    sw = Warehouse(spark, state_schema="unused")
    got = _stage(sw, path)
    sw.release()
    assert got == duck
    req, outcomes, odd = got
    assert [r[1] for r in req] == ["succeeded", "succeeded", "succeeded", "errored", "expired"]
    assert ("s-000000", 1, "succeeded", ["positive"], None, 7) in outcomes
    second = [o for o in outcomes if o[:2] == ("s-000000", 2)][0]
    assert second[2] == "invalid_output" and "'bogus' is not one of the allowed labels" in second[4]
    assert [o[2] for o in outcomes if o[0] == "s-000001"] == ["succeeded", "invalid_output"]
    assert [o[3] for o in outcomes if o[0] == "s-000002"] == [["neutral"]]
    assert [o[0] for o in odd] == ["s-000003"]


def test_single_table_writes_and_a_later_session(spark, spark_db):
    wh = Warehouse(spark, state_schema=spark_db)
    table = wh.state_table("cb_things")
    wh.create_table(table, "k VARCHAR NOT NULL, n INTEGER, tags VARCHAR[], at TIMESTAMP")
    wh.append(table, {"k": ["a", "b", "c"], "n": [1, 2, 3], "tags": [["x"], None, ["y", "z"]]})
    wh.update(table, {"n": 20}, "k = ?", ["b"])
    wh.replace_where(table, "k = ?", "SELECT ?, ?, NULL, NULL", ["c", "c", 30])
    wh.delete(table, "k = ?", ["a"])
    wh.append_select(table, ["k", "n"], f"SELECT 'd', max(n) + 1 FROM {table}")
    want = [("b", 20, None), ("c", 30, None), ("d", 31, None)]
    assert wh.fetchall(f"SELECT k, n, tags FROM {table} ORDER BY k") == want
    assert wh.state_relations() == {"cb_things"}
    assert wh.state_columns()["cb_things"] == {"k": "VARCHAR", "n": "INTEGER", "tags": "VARCHAR[]", "at": "TIMESTAMP"}

    # A later session knows no table: it finds the newest complete version, not a half-written one.
    root = Path(wh._table_root(table))
    (root / "v99999999999999999999").mkdir()  # a rewrite killed before Spark's _SUCCESS marker
    spark.sql(f"DROP TABLE {spark_db}.cb_things")  # an external table: its files stay
    later = Warehouse(spark, state_schema=spark_db)
    later.create_table(table, "k VARCHAR NOT NULL, n INTEGER, tags VARCHAR[], at TIMESTAMP")
    assert later.fetchall(f"SELECT k, n, tags FROM {table} ORDER BY k") == want
