"""State tables: created once, upgraded in place, and not touched again while current."""

import hashlib
import uuid

import duckdb

from claude_batch.state import StateStore
from claude_batch.warehouse import Warehouse


def columns(con, table):
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'claude_batch' AND table_name = ?",
        [table]).fetchall()}


def test_older_state_gets_the_new_columns_and_keeps_its_rows(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA claude_batch")
    # An earlier release's layout: no cost on results, no row_chars on requests, status on items.
    con.execute("""CREATE TABLE claude_batch.cb_results (version VARCHAR NOT NULL, text_hash VARCHAR NOT NULL,
                   status VARCHAR, labels VARCHAR[], raw_answer VARCHAR, error_type VARCHAR, error_message VARCHAR,
                   custom_id VARCHAR, batch_id VARCHAR, attempt INTEGER, model VARCHAR, classifier VARCHAR,
                   collected_at TIMESTAMP)""")
    con.execute("""CREATE TABLE claude_batch.cb_request_items (custom_id VARCHAR NOT NULL, item_id INTEGER NOT NULL,
                   version VARCHAR, text_hash VARCHAR, attempt INTEGER, row_chars INTEGER, status VARCHAR,
                   billed_usd DOUBLE, naive_usd DOUBLE)""")
    # Its text keys were md5 strings.
    con.execute("INSERT INTO claude_batch.cb_results VALUES ('v1', md5('t1'), 'succeeded', ['pos'], NULL, NULL, NULL, "
                "'k-000000', 'b1', 1, 'm', 'c', now()::TIMESTAMP)")
    con.execute("INSERT INTO claude_batch.cb_request_items VALUES ('k-000000', 1, 'v1', md5('t1'), 1, 2, NULL, NULL, NULL)")
    store = StateStore(Warehouse(con))
    store.ensure()
    assert {"billed_usd", "naive_usd"} <= columns(con, "cb_results")
    assert "row_chars" in columns(con, "cb_requests")
    assert "status" in columns(con, "cb_request_items")  # nothing is dropped
    (row,) = con.execute("SELECT status, labels, attempts, attempts_billed_usd FROM claude_batch.cb_current_results").fetchall()
    # A result written before costs were recorded has an unknown cost: NULL, as a model with no prices
    # (a cost column only ever holds what was billed).
    assert row == ("succeeded", ["pos"], 1, None)
    # The keys became this release's for the same text, so old results still match texts.
    for table in ("cb_results", "cb_request_items"):
        assert con.execute(f"SELECT count(*) FROM claude_batch.{table} WHERE text_hash = md5_number('t1')::UUID").fetchone() == (1,)
    # Items written by this release name their columns; the old extra ones stay NULL.
    con.execute("INSERT INTO claude_batch.cb_request_items (custom_id, item_id, version, text_hash, attempt, row_chars) "
                "VALUES ('k-000001', 1, 'v1', md5_number('t2')::UUID, 1, 5)")


def test_current_schema_is_checked_not_rebuilt_and_a_dropped_view_comes_back(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    store = StateStore(Warehouse(con))
    store.ensure()
    (schema,) = con.execute("SELECT value FROM claude_batch.cb_meta WHERE key = 'schema'").fetchone()
    con.execute("CREATE OR REPLACE VIEW claude_batch.cb_cost_by_run AS SELECT 'user edit' AS marker")
    store.ensure()  # current: the one check finds every table and the hash, so nothing is redone
    assert con.execute("SELECT marker FROM claude_batch.cb_cost_by_run").fetchall() == [("user edit",)]
    con.execute("DROP VIEW claude_batch.cb_cost_by_text")
    store.ensure()
    assert con.execute("SELECT count(*) FROM claude_batch.cb_cost_by_text").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM claude_batch.cb_meta WHERE key = 'schema'").fetchone() == (1,)
    assert con.execute("SELECT value FROM claude_batch.cb_meta WHERE key = 'schema'").fetchone() == (schema,)


def test_the_earliest_layout_with_a_key_on_results_is_rebuilt_with_its_rows(tmp_path):
    # The first release kept one row per (version, text) under a primary key; DuckDB cannot change
    # the type of a column in such a table, so the upgrade rebuilds it, keeping rows and extra columns.
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA claude_batch")
    con.execute("""CREATE TABLE claude_batch.cb_results (version VARCHAR NOT NULL, text_hash VARCHAR NOT NULL,
                   status VARCHAR, labels VARCHAR[], attempts INTEGER, PRIMARY KEY (version, text_hash))""")
    con.execute("INSERT INTO claude_batch.cb_results VALUES ('v1', md5('t1'), 'succeeded', ['pos'], 2)")
    StateStore(Warehouse(con)).ensure()
    assert con.execute("SELECT version, text_hash = md5_number('t1')::UUID, status, labels, attempts "
                       "FROM claude_batch.cb_results").fetchall() == [("v1", True, "succeeded", ["pos"], 2)]
    assert {"billed_usd", "naive_usd", "custom_id"} <= columns(con, "cb_results")
    assert con.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = 'claude_batch' "
                       "AND table_name = 'cb_results' AND column_name = 'text_hash'").fetchone() == ("UUID",)
    # Upgraded once: the next check finds it current.
    StateStore(Warehouse(con)).ensure()
    assert con.execute("SELECT count(*) FROM claude_batch.cb_results").fetchone() == (1,)


def test_keys_of_the_previous_scheme_are_converted_once_and_match_the_texts(tmp_path):
    # The previous release keyed texts by md5(text)::UUID; this one by md5_number(text)::UUID (the
    # same digest, bytes reversed). Its results must keep matching their texts: nothing sent twice.
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    store = StateStore(Warehouse(con))
    store.ensure()
    con.execute("DELETE FROM claude_batch.cb_meta")  # as the previous release left it: no key scheme
    for text in ("t1", "ünï ✓"):
        con.execute("INSERT INTO claude_batch.cb_results (version, text_hash, status) VALUES ('v1', md5(?)::UUID, 'succeeded')", [text])
        con.execute("INSERT INTO claude_batch.cb_request_items (custom_id, item_id, version, text_hash) "
                    "VALUES ('k-000000', 1, 'v1', md5(?)::UUID)", [text])
    for _ in range(2):  # the second check finds the scheme current and converts nothing again
        StateStore(Warehouse(con)).ensure()
        for table in ("cb_results", "cb_request_items"):
            assert con.execute(f"SELECT count(*) FROM claude_batch.{table} WHERE text_hash IN "
                               "(md5_number('t1')::UUID, md5_number('ünï ✓')::UUID)").fetchone() == (2,)
    assert con.execute("SELECT value FROM claude_batch.cb_meta WHERE key = 'text_key'").fetchone() == (
        Warehouse.TEXT_KEY_SCHEME,)


def test_the_slow_key_expression_gives_the_same_keys(tmp_path):
    con = duckdb.connect()
    fast, slow = Warehouse(con), Warehouse(con)
    assert "md5_number" in fast.hash_sql("t")
    slow._md5_number_ok = False  # as on a DuckDB whose md5_number differs from Python's md5
    texts = ["", "t1", "ünïcödé ✓", "x" * 10_000, "quote ' and \\ backslash"]
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS t", [texts])
    got = con.execute(f"SELECT {fast.hash_sql('t')} = {slow.hash_sql('t')}, {fast.hash_sql('t')} FROM t").fetchall()
    assert all(same for same, _ in got)
    assert [str(key) for _, key in got] == [str(uuid.UUID(bytes=hashlib.md5(t.encode()).digest()[::-1])) for t in texts]
