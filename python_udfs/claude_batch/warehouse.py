"""Everything warehouse-specific, behind one small class: SQL dialect, transactions, bulk loads, locks.

The batch client, prompts and cost code never touch SQL. The state store (``state.py``) speaks
through :class:`Warehouse`, whose DuckDB implementation is the embedded default. Another adapter
with Python models (MotherDuck, Snowflake, Databricks, BigQuery) gets its own subclass that
overrides these few methods: identifier quoting, hashing, typed list columns, upsert, bulk load of
a JSONL file and of an Arrow table, transactions and the run lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from typing import Any, Iterator, Sequence

import duckdb
from .errors import ClaudeBatchError


def quote_ident(name: str) -> str:
    """Quote any identifier, however hostile (spaces, quotes, reserved words)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class LockedError(ClaudeBatchError, RuntimeError):
    """Another run holds the classifier's lock."""


@contextlib.contextmanager
def open_database(path: str | os.PathLike, *, state_schema: str = "claude_batch") -> Iterator["Warehouse"]:
    """A DuckDB file opened read-only, for readers beside dbt (the report). A missing file is an error,
    not a new empty database."""
    if not os.path.exists(path):
        raise ClaudeBatchError(f"database file {os.fspath(path)!r} does not exist")
    con = duckdb.connect(os.fspath(path), read_only=True)
    try:
        yield Warehouse(con, state_schema=state_schema)
    finally:
        con.close()


class Warehouse:
    """DuckDB implementation (also the reference for other adapters)."""

    dialect = "duckdb"

    def __init__(self, session: Any, *, database: str | None = None, state_schema: str = "claude_batch"):
        # dbt-duckdb hands Python models a cursor wrapper; a plain duckdb connection works too.
        self.con = session
        self.database = database
        self.state_schema = state_schema
        self._md5_number_ok: bool | None = None  # see hash_sql

    # ------------------------------------------------------------------ names
    def q(self, name: str) -> str:
        return quote_ident(name)

    def state_table(self, name: str) -> str:
        prefix = f"{quote_ident(self.database)}." if self.database else ""
        return f"{prefix}{quote_ident(self.state_schema)}.{quote_ident(name)}"

    def temp_name(self, stem: str) -> str:
        return f"cb_tmp_{stem}_{uuid.uuid4().hex[:8]}"

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
        """A query's columns as numpy arrays (for many small rows: no Python object per row)."""
        return self.con.execute(sql).fetchnumpy()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.fetchall(sql, params)
        return rows[0][0] if rows else None

    def relation(self, sql: str) -> duckdb.DuckDBPyRelation:
        return self.con.sql(sql)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One state transition = one transaction: all of it lands, or none of it.

        dbt can hand the model a connection inside its own open transaction (``--no-populate-cache``:
        its relation lookups). DuckDB does not nest transactions, and a transition must be committed
        before the API call it guards, so that one (dbt's reads so far) is committed first and a
        transaction is open again afterwards, as dbt expects. (Probing with BEGIN would abort dbt's
        transaction: a failed statement does; COMMIT outside a transaction fails harmlessly.)
        """
        try:
            self.con.execute("COMMIT")
            reopen = True
        except duckdb.TransactionException:  # "no transaction is active": the usual autocommit case
            reopen = False
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            if reopen:
                self.con.execute("BEGIN TRANSACTION")

    # ------------------------------------------------------------------ dialect pieces
    # Text keys: the md5 of the text as a UUID (16 bytes: every join, aggregate and insert on it is a
    # fixed-width compare), its bytes in md5_number's order, which DuckDB computes twice as fast as
    # md5() plus a cast (no hex string per row). The order is checked once against Python's md5, so
    # a DuckDB that ever defines md5_number otherwise gets the same keys the slow way, never others.
    TEXT_KEY_SCHEME = "md5-reversed-uuid"
    _KEY_PROBE = "claude-batch text key probe"

    def hash_sql(self, expr: str) -> str:
        """Key of a text (``TEXT_KEY_SCHEME``): ``md5_number(text)::UUID`` reproduces it in SQL."""
        if self._md5_number_ok is None:
            expected = uuid.UUID(bytes=hashlib.md5(self._KEY_PROBE.encode()).digest()[::-1])
            got = self.scalar(f"SELECT CAST(md5_number({quote_literal(self._KEY_PROBE)}) AS UUID)")
            self._md5_number_ok = got == expected
        if self._md5_number_ok:
            return f"CAST(md5_number({expr}) AS UUID)"
        return self.reverse_uuid_sql(f"md5({expr})")

    def reverse_uuid_sql(self, hex_expr: str) -> str:
        """A UUID from 32 hex digits (dashes allowed) with the byte order reversed: how keys of the
        earlier ``md5(text)::UUID`` scheme become this one's, and the slow way to this one."""
        return (f"CAST(array_to_string(list_reverse(regexp_extract_all(replace(CAST({hex_expr} AS VARCHAR), '-', ''), "
                f"'..')), '') AS UUID)")

    def text_key_type(self) -> str:
        """Column type of ``hash_sql``'s values in the state tables."""
        return "UUID"

    def fingerprint_sql(self, *exprs: str) -> str:
        """A cheap 64-bit fingerprint of values (several times faster than md5 on long texts): tells a
        source row seen before from a new or changed one (``source.scan_sql``)."""
        return f"hash({', '.join(exprs)})"

    def fingerprint_type(self) -> str:
        return "UBIGINT"

    def text_sql(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def string_list_type(self) -> str:
        return "VARCHAR[]"

    def now_sql(self) -> str:
        return "now()::TIMESTAMP"

    def time_bucket_sql(self, unit: str, expr: str) -> str:
        """A timestamp truncated to its ``unit`` ('minute', 'hour', 'day'): time series of the report."""
        if unit not in ("minute", "hour", "day"):
            raise ValueError(f"time bucket {unit!r}: minute, hour or day")
        return f"date_trunc({quote_literal(unit)}, {expr})"

    def json_inner_sql(self, expr: str) -> str:
        """A text as it is inside a JSON string literal (escaped, without the quotes), as VARCHAR."""
        return f"CAST(to_json({expr}) AS VARCHAR)[2:-2]"

    def set_digest_sql(self, *exprs: str) -> str:
        """Aggregate: an order-independent digest of the group's distinct rows (same rows, same digest)."""
        return f"CAST(bit_xor(hash({', '.join(exprs)})) AS VARCHAR)"

    def iter_arrow(self, sql: str, batch_rows: int = 4096) -> Iterator[Any]:
        """A query's result as Arrow record batches, a few thousand rows at a time (bounded memory)."""
        yield from self.con.sql(sql).to_arrow_reader(batch_rows)

    def ensure_schema(self) -> None:
        prefix = f"{quote_ident(self.database)}." if self.database else ""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {prefix}{quote_ident(self.state_schema)}")

    def state_columns(self) -> dict[str, dict[str, str]]:
        """Column names and types of every table in the state schema, by table."""
        catalog = "AND table_catalog = ?" if self.database else ""
        params = [self.state_schema] + ([self.database] if self.database else [])
        out: dict[str, dict[str, str]] = {}
        for table, column, data_type in self.fetchall(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = ? {catalog}", params
        ):
            out.setdefault(table, {})[column] = data_type
        return out

    def rebuild_table(self, table: str, columns_ddl: str, copy: dict[str, str]) -> None:
        """Replace ``table`` by a new one with ``columns_ddl``, filled from the old one (target column →
        SQL expression over the old columns). How an older release's state changes a column's type:
        DuckDB cannot ALTER the type of a column in a table with a key constraint, which early
        releases had. One transaction: an interrupted upgrade leaves the old table, never none."""
        schema_prefix, _, name = table.rpartition(".")
        new = f"{schema_prefix}.{quote_ident(self.temp_name('upgrade'))}"
        cols = ", ".join(quote_ident(c) for c in copy)
        with self.transaction():
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

    # ------------------------------------------------------------------ bulk loads
    def insert_columns(self, table: str, columns: dict[str, list]) -> None:
        """Insert columns of values through one Arrow table (one statement, not one per row)."""
        if not columns or not len(next(iter(columns.values()))):
            return
        import pyarrow as pa

        name = self.temp_name("rows")
        self.con.register(name, pa.table(columns))
        try:
            cols = ", ".join(quote_ident(c) for c in columns)
            self.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {quote_ident(name)}")
        finally:
            self.con.unregister(name)

    def read_jsonl_sql(self, path: str | os.PathLike, columns: dict[str, str]) -> str:
        """A relation over a JSONL file, parsed by DuckDB itself (fast, bounded memory)."""
        cols = "{" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in columns.items()) + "}"
        return (
            f"read_json({quote_literal(str(path))}, format='newline_delimited', "
            f"columns={cols}, maximum_object_size=16777216)"  # a result line is far smaller; the reader buffers 2x this
        )

    # ------------------------------------------------------------------ locks
    def acquire_lock(self, table: str, classifier: str, owner: str, stale_after_s: float) -> None:
        """A lock row per classifier for shared warehouses; a local DuckDB file is also locked by
        DuckDB itself (a second process cannot open it at all)."""
        with self.transaction():
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
        self.execute(f"DELETE FROM {table} WHERE classifier = ? AND owner = ?", [classifier, owner])
