"""The DuckDB engine (the embedded default, and the reference for the others).

Each single-table write is its own DuckDB transaction, committed before it returns (see
:meth:`DuckDBWarehouse._atomic` for dbt's open transaction). Batch results are parsed by DuckDB
itself (``read_json``, ``from_json``, list lambdas) in :mod:`._duckdb_results`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import duckdb

from ..errors import ClaudeBatchError
from . import _duckdb_results
from ._duckdb_results import BIT_LABELS  # noqa: F401  (public: the SQL judge's bit-mask limit)
from .base import (STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS, STAGE_REQUESTS, STAGE_REQUESTS_COLUMNS, LockedError,
                   ResultShape, Sql, StagedResults, Warehouse, quote_ident, quote_literal)

log = logging.getLogger("claude_batch.warehouse")

_TYPES = {"LIST<VARCHAR>": "VARCHAR[]"}


@contextlib.contextmanager
def open_database(path: str | os.PathLike, *, state_schema: str = "claude_batch") -> Iterator["DuckDBWarehouse"]:
    """A DuckDB file opened read-only, for readers beside dbt (the report). A missing file is an error,
    not a new empty database."""
    if not os.path.exists(path):
        raise ClaudeBatchError(f"database file {os.fspath(path)!r} does not exist")
    con = duckdb.connect(os.fspath(path), read_only=True)
    try:
        yield DuckDBWarehouse(con, state_schema=state_schema)
    finally:
        con.close()


class DuckDBWarehouse(Warehouse):
    """DuckDB: a duckdb connection, or the cursor wrapper dbt-duckdb hands a Python model."""

    dialect = "duckdb"
    supports_update = True
    supports_merge = True
    supports_transactions = True

    def __init__(self, session: Any, *, database: str | None = None, state_schema: str = "claude_batch"):
        super().__init__(session, database=database, state_schema=state_schema)
        self._md5_number_ok: bool | None = None  # see hash_sql
        self._depth = 0  # nesting of _atomic

    @classmethod
    def accepts(cls, session: Any) -> bool:
        return isinstance(session, duckdb.DuckDBPyConnection) or type(session).__module__.startswith(
            ("dbt.adapters.duckdb", "duckdb"))

    # ------------------------------------------------------------------ execution
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if params is None:
            self.con.execute(sql)
        else:
            self.con.execute(sql, list(params))

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        # Always drain: a half-read result blocks a later register() on DuckDB 2.0.
        cur = self.con.execute(sql) if params is None else self.con.execute(sql, list(params))
        return cur.fetchall()

    def fetch_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict]:
        cur = self.con.execute(sql) if params is None else self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def fetch_arrays(self, sql: str) -> dict[str, Any]:
        return self.con.execute(sql).fetchnumpy()

    def relation(self, sql: str) -> duckdb.DuckDBPyRelation:
        return self.con.sql(sql)

    def iter_arrow(self, sql: str, batch_rows: int = 4096) -> Iterator[Any]:
        yield from self.con.sql(sql).to_arrow_reader(batch_rows)

    def upgrade_text_keys(self, tables: Sequence[str], meta_table: str, scheme: str) -> None:
        # Not idempotent (reversing twice restores the old keys): the one upgrade that needs a
        # multi-table transaction, on the one engine that wrote the old scheme.
        with self._atomic():
            for table in tables:
                self.update(table, {"text_hash": Sql(self.reverse_uuid_sql("text_hash"))}, "text_hash IS NOT NULL")
            super().upgrade_text_keys(tables, meta_table, scheme)

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """One DuckDB transaction, committed when the block ends (re-entrant: an inner block joins it).

        dbt can hand the model a connection inside its own open transaction (``--no-populate-cache``:
        its relation lookups). DuckDB does not nest transactions, and a write must be committed
        before the API call it guards, so that one (dbt's reads so far) is committed first and a
        transaction is open again afterwards, as dbt expects. (Probing with BEGIN would abort dbt's
        transaction: a failed statement does; COMMIT outside a transaction fails harmlessly.)
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self.con.execute("COMMIT")
            reopen = True
        except duckdb.TransactionException:  # "no transaction is active": the usual autocommit case
            reopen = False
        self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.con.execute("ROLLBACK")
            raise
        else:
            self._depth = 0
            self.con.execute("COMMIT")
        finally:
            self._depth = 0
            if reopen:
                self.con.execute("BEGIN TRANSACTION")

    # ------------------------------------------------------------------ session-scoped relations
    def create_temp_table(self, name: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        self.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} AS {select_sql}", params)

    def create_temp_view(self, name: str, select_sql: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(name)} AS {select_sql}")

    def drop_temp(self, name: str) -> None:
        # DROP VIEW on a table fails, and a failed statement would abort dbt's open transaction.
        view = self.scalar("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [name])
        self.execute(f"DROP {'VIEW' if view else 'TABLE'} IF EXISTS {quote_ident(name)}")

    def create_staging(self, name: str, columns: Mapping[str, str]) -> None:
        cols = ", ".join(f"{quote_ident(c)} {_TYPES.get(t, t)}" for c, t in columns.items())
        self.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} ({cols})")

    @contextlib.contextmanager
    def arrow_relation(self, table: Any) -> Iterator[str]:
        name = self.temp_name("arrow")
        self.con.register(name, table)
        try:
            yield quote_ident(name)
        finally:
            self.con.unregister(name)

    def drop_column(self, name: str, column: str) -> None:
        self.execute(f"ALTER TABLE {quote_ident(name)} DROP COLUMN {quote_ident(column)}")

    # ------------------------------------------------------------------ single-table writes
    def append(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        if not columns or not len(next(iter(columns.values()))):
            return
        import pyarrow as pa

        with self.arrow_relation(pa.table(dict(columns))) as rel:
            cols = ", ".join(quote_ident(c) for c in columns)
            with self._atomic():
                self.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {rel}")

    def append_select(self, table: str, columns: Sequence[str], select_sql: str,
                      params: Sequence[Any] | None = None) -> None:
        with self._atomic():
            self.execute(f"INSERT INTO {table} ({', '.join(quote_ident(c) for c in columns)}) {select_sql}", params)

    def update(self, table: str, values: Mapping[str, Any], where_sql: str,
               params: Sequence[Any] | None = None) -> None:
        sets = ", ".join(f"{quote_ident(c)} = {v if isinstance(v, Sql) else '?'}" for c, v in values.items())
        bound = [v for v in values.values() if not isinstance(v, Sql)]
        with self._atomic():
            self.execute(f"UPDATE {table} SET {sets} WHERE {where_sql}", [*bound, *(params or [])] or None)

    def update_from(self, table: str, keys: Sequence[str], source_sql: str, columns: Sequence[str],
                    params: Sequence[Any] | None = None) -> None:
        sets = ", ".join(f"{quote_ident(c)} = cb_src.{quote_ident(c)}" for c in columns)
        on = " AND ".join(f"{table}.{quote_ident(k)} = cb_src.{quote_ident(k)}" for k in keys)
        with self._atomic():
            self.execute(f"UPDATE {table} SET {sets} FROM ({source_sql}) cb_src WHERE {on}", params)

    def delete(self, table: str, where_sql: str, params: Sequence[Any] | None = None) -> None:
        with self._atomic():
            self.execute(f"DELETE FROM {table} WHERE {where_sql}", params)

    def replace_where(self, table: str, where_sql: str, select_sql: str,
                      params: Sequence[Any] | None = None) -> None:
        n_where = where_sql.count("?")
        params = list(params or [])
        with self._atomic():
            self.execute(f"DELETE FROM {table} WHERE {where_sql}", params[:n_where] or None)
            self.execute(f"INSERT INTO {table} {select_sql}", params[n_where:] or None)

    def replace(self, table: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        staged = self.temp_name("replace")
        with self._atomic():  # staged first: the query may read the table it replaces
            self.execute(f"CREATE TEMP TABLE {quote_ident(staged)} AS {select_sql}", params)
            self.execute(f"DELETE FROM {table}")
            self.execute(f"INSERT INTO {table} SELECT * FROM {quote_ident(staged)}")
            self.execute(f"DROP TABLE {quote_ident(staged)}")

    # ------------------------------------------------------------------ schema
    def ensure_schema(self) -> None:
        prefix = f"{quote_ident(self.database)}." if self.database else ""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {prefix}{quote_ident(self.state_schema)}")

    def state_relations(self) -> set[str]:
        return {name for (name,) in self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [self.state_schema])}

    def state_columns(self) -> dict[str, dict[str, str]]:
        catalog = "AND table_catalog = ?" if self.database else ""
        params = [self.state_schema] + ([self.database] if self.database else [])
        out: dict[str, dict[str, str]] = {}
        for table, column, data_type in self.fetchall(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = ? {catalog}", params
        ):
            out.setdefault(table, {})[column] = data_type
        return out

    def create_table(self, table: str, columns_ddl: str) -> None:
        self.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns_ddl})")

    def create_view(self, view: str, select_sql: str) -> None:
        self.execute(f"CREATE OR REPLACE VIEW {view} AS {select_sql}")

    def add_column(self, table: str, column: str, type_sql: str) -> None:
        self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {type_sql}")

    def rebuild_table(self, table: str, columns_ddl: str, copy: dict[str, str]) -> None:
        """DuckDB cannot ALTER the type of a column in a table with a key constraint, which early
        releases had: a new table, filled, renamed, in one transaction."""
        schema_prefix, _, name = table.rpartition(".")
        new = f"{schema_prefix}.{quote_ident(self.temp_name('upgrade'))}"
        cols = ", ".join(quote_ident(c) for c in copy)
        with self._atomic():
            self.execute(f"CREATE TABLE {new} ({columns_ddl})")
            self.execute(f"INSERT INTO {new} ({cols}) SELECT {', '.join(copy.values())} FROM {table}")
            self.execute(f"DROP TABLE {table}")
            self.execute(f"ALTER TABLE {new} RENAME TO {name}")

    def table_exists(self, relation_sql: str) -> bool:
        try:
            self.fetchall(f"SELECT 1 FROM {relation_sql} LIMIT 0")
            return True
        except (duckdb.CatalogException, Exception) as exc:  # dbt wraps errors in DbtRuntimeError
            if "does not exist" in str(exc) or "Catalog Error" in str(exc):
                return False
            raise

    def columns_of(self, relation_sql: str) -> list[str]:
        cur = self.con.execute(f"SELECT * FROM {relation_sql} LIMIT 0")
        names = [d[0] for d in cur.description]
        cur.fetchall()
        return names

    # ------------------------------------------------------------------ dialect: types
    def text_key_type(self) -> str:
        return "UUID"

    def fingerprint_type(self) -> str:
        return "UBIGINT"

    def string_list_type(self) -> str:
        return "VARCHAR[]"

    # ------------------------------------------------------------------ dialect: expressions
    # Text keys: the md5 of the text as a UUID (16 bytes: every join, aggregate and insert on it is a
    # fixed-width compare), its bytes in md5_number's order, which DuckDB computes twice as fast as
    # md5() plus a cast (no hex string per row). The order is checked once against Python's md5, so
    # a DuckDB that ever defines md5_number otherwise gets the same keys the slow way, never others.
    _KEY_PROBE = "claude-batch text key probe"

    def hash_sql(self, expr: str) -> str:
        """``md5_number(text)::UUID`` reproduces a key in SQL."""
        if self._md5_number_ok is None:
            expected = uuid.UUID(bytes=hashlib.md5(self._KEY_PROBE.encode()).digest()[::-1])
            got = self.scalar(f"SELECT CAST(md5_number({quote_literal(self._KEY_PROBE)}) AS UUID)")
            self._md5_number_ok = got == expected
        if self._md5_number_ok:
            return f"CAST(md5_number({expr}) AS UUID)"
        return self.reverse_uuid_sql(f"md5({expr})")

    def reverse_uuid_sql(self, hex_expr: str) -> str:
        return (f"CAST(array_to_string(list_reverse(regexp_extract_all(replace(CAST({hex_expr} AS VARCHAR), '-', ''), "
                f"'..')), '') AS UUID)")

    def fingerprint_sql(self, *exprs: str) -> str:
        # Several times faster than md5 on long texts.
        return f"hash({', '.join(exprs)})"

    def set_digest_sql(self, *exprs: str) -> str:
        return f"CAST(bit_xor(hash({', '.join(exprs)})) AS VARCHAR)"

    def text_sql(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def now_sql(self) -> str:
        return "CAST(now() AS TIMESTAMP)"

    def seconds_between_sql(self, start: str, end: str) -> str:
        return f"epoch({end} - {start})"

    def time_bucket_sql(self, unit: str, expr: str) -> str:
        if unit not in ("minute", "hour", "day"):
            raise ValueError(f"time bucket {unit!r}: minute, hour or day")
        return f"date_trunc({quote_literal(unit)}, {expr})"

    def json_inner_sql(self, expr: str) -> str:
        return f"CAST(to_json({expr}) AS VARCHAR)[2:-2]"

    def regexp_matches_sql(self, expr: str, pattern: str) -> str:
        return f"regexp_matches({expr}, {pattern})"

    def list_sort_sql(self, expr: str) -> str:
        return f"list_sort({expr})"

    def list_join_sql(self, expr: str, sep: str) -> str:
        return f"array_to_string({expr}, {sep})"

    def row_number_sql(self) -> str:
        return "row_number() OVER ()"

    def int_div_sql(self, a: str, b: str) -> str:
        return f"({a}) // ({b})"

    def list_first_sql(self, expr: str) -> str:
        return f"{expr}[1]"

    def list_contains_sql(self, expr: str, value: str) -> str:
        return f"list_contains({expr}, {value})"

    def arg_max_sql(self, value: str, order: str) -> str:
        return f"arg_max({value}, {order})"

    def arg_min_sql(self, value: str, order: str) -> str:
        return f"arg_min({value}, {order})"

    def outcome_order_sql(self, succeeded: str, attempt: str, at: str) -> str:
        # One HUGEINT: comparing it is several times cheaper than comparing a struct, and this
        # aggregate runs on every read of the state.
        return (f"((CAST({succeeded} AS HUGEINT) << 100) + (CAST(coalesce({attempt}, 0) AS HUGEINT) << 64)"
                f" + coalesce(epoch_us({at}), 0))")

    def row_id_sql(self, alias: str = "") -> str:
        return f"{alias}.rowid" if alias else "rowid"

    def materialized_cte(self, name: str, body: str) -> str:
        return f"{name} AS MATERIALIZED ({body})"

    # ------------------------------------------------------------------ bulk reads
    def read_jsonl_sql(self, path: str | os.PathLike, columns: dict[str, str]) -> str:
        cols = "{" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in columns.items()) + "}"
        return (
            f"read_json({quote_literal(str(path))}, format='newline_delimited', "
            f"columns={cols}, maximum_object_size=16777216)"  # a result line is far smaller; the reader buffers 2x this
        )

    def stage_batch_results(self, path: str, *, requests_table: str, submission_key: str,
                            shape: ResultShape) -> StagedResults:
        self.create_staging(STAGE_REQUESTS, STAGE_REQUESTS_COLUMNS)
        self.create_staging(STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS)
        return _duckdb_results.stage(self, path, requests_table=requests_table, submission_key=submission_key,
                                     shape=shape)

    # ------------------------------------------------------------------ locks
    def acquire_lock(self, table: str, classifier: str, owner: str, stale_after_s: float) -> None:
        """A lock row per classifier for shared warehouses (check and take in one transaction); a
        local DuckDB file is also locked by DuckDB itself (a second process cannot open it)."""
        with self._atomic():
            row = self.fetchall(
                f"SELECT owner, epoch(now()::TIMESTAMP - acquired_at) FROM {table} WHERE classifier = ?",
                [classifier],
            )
            if row and row[0][0] != owner and row[0][1] is not None and row[0][1] < stale_after_s:
                raise LockedError(
                    f"classifier {classifier!r} is being run by {row[0][0]} (lock taken {row[0][1]:.0f}s ago); "
                    "this run stops without submitting anything. It is safe to run again later."
                )
            self.execute(f"DELETE FROM {table} WHERE classifier = ?", [classifier])
            self.execute(
                f"INSERT INTO {table} (classifier, owner, acquired_at) VALUES (?, ?, now()::TIMESTAMP)",
                [classifier, owner],
            )

    def release_lock(self, table: str, classifier: str, owner: str) -> None:
        self.delete(table, "classifier = ? AND owner = ?", [classifier, owner])
