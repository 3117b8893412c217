"""The Spark engine: a SparkSession, as dbt-databricks, dbt-bigquery (Dataproc) and dbt-glue hand a
Python model one (``def model(dbt, session)``).

State tables are ordinary Spark tables (Parquet) in the configured schema (database). Plain Spark
tables have no UPDATE, DELETE or MERGE (those need Delta or Iceberg), so every single-table write
that is not an append is one rewrite of that table, made atomic by writing the new version to a
directory of its own and then pointing the table at it (``ALTER TABLE ... SET LOCATION``, one
catalog change). A crash before the switch leaves the old version in place; the next session that
opens the state takes the newest *complete* version (one with Spark's ``_SUCCESS`` marker), so a
state change a crash interrupted is either all there or not at all.

Session-scoped relations (the run's scratch tables) are temporary views over checkpointed
DataFrames: computed once, gone with the session. ``INSERT INTO`` such a relation (the Python
parser's staged answers) is a union and a new checkpoint.

Batch results are read by Spark itself (``spark.read.json`` of the downloaded JSONL, ``from_json``,
``explode`` and array functions judge every answer; no Python per row); the rare answer SQL cannot
read goes back to the caller's Python parser, as on DuckDB.

Identifiers: the shared SQL quotes them with double quotes; every statement is parsed with
``spark.sql.ansi.doubleQuotedIdentifiers`` on (ANSI mode, Spark's default since 4.0), set for our
statements only and restored after, so the user's session keeps its settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from .base import (STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS, STAGE_REQUESTS, STAGE_REQUESTS_COLUMNS, LockedError,
                   ResultShape, Sql, StagedResults, Warehouse, quote_ident, quote_literal)

log = logging.getLogger("claude_batch.warehouse")

# Portable type names (the state DDL's) → Spark's, and back (state_columns reports the portable ones).
_TO_SPARK = [
    (re.compile(r"\bVARCHAR\[\]", re.I), "ARRAY<STRING>"),
    (re.compile(r"\bLIST<VARCHAR>", re.I), "ARRAY<STRING>"),
    (re.compile(r"\bVARCHAR\b", re.I), "STRING"),
    (re.compile(r"\bTIMESTAMP\b(?!_)", re.I), "TIMESTAMP_NTZ"),
    (re.compile(r"\bUBIGINT\b", re.I), "BIGINT"),
    (re.compile(r"\bHUGEINT\b", re.I), "DECIMAL(38,0)"),
    (re.compile(r"\bUUID\b", re.I), "STRING"),
    (re.compile(r"\s+NOT\s+NULL\b", re.I), ""),  # Parquet tables hold no constraints
]
_FROM_SPARK = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
               "boolean": "BOOLEAN", "timestamp_ntz": "TIMESTAMP", "timestamp": "TIMESTAMP",
               "array<string>": "VARCHAR[]", "smallint": "SMALLINT", "float": "FLOAT"}
_INSERT_TEMP = re.compile(r"^\s*INSERT\s+INTO\s+\"?(cb_tmp_\w+)\"?\s+(.*)$", re.I | re.S)
_ANSI = {"spark.sql.ansi.enabled": "true", "spark.sql.ansi.doubleQuotedIdentifiers": "true"}
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|`([^`]*)`|([^."`]+)')


def to_spark_type(portable: str) -> str:
    """A column list or type in the portable spelling (VARCHAR, VARCHAR[], TIMESTAMP...) in Spark's."""
    out = portable
    for pattern, repl in _TO_SPARK:
        out = pattern.sub(repl, out)
    return out


def name_parts(qualified: str) -> list[str]:
    """``"db"."table"`` (or backticks, or bare) → ['db', 'table']."""
    return [(m.group(1) or "").replace('""', '"') if m.group(1) is not None else (m.group(2) or m.group(3))
            for m in _NAME_PART.finditer(qualified)]


def spark_name(qualified: str) -> str:
    """A qualified name in backticks (for the DataFrame API, which takes no double quotes)."""
    return ".".join("`" + p.replace("`", "``") + "`" for p in name_parts(qualified))


class SparkWarehouse(Warehouse):
    """Spark (local, Databricks, Dataproc, Glue): a ``pyspark.sql.SparkSession``."""

    dialect = "spark"
    supports_update = False
    supports_merge = False
    supports_transactions = False
    TEXT_KEY_SCHEME: ClassVar[str] = "md5-reversed-uuid"  # the same keys as DuckDB's: state moves between engines

    def __init__(self, session: Any, *, database: str | None = None, state_schema: str = "claude_batch",
                 state_location: str | None = None):
        # dbt's `this.database` is the catalog on Databricks (Unity) and None/empty elsewhere; Spark's
        # default catalog needs no prefix.
        super().__init__(session, database=database or None, state_schema=state_schema)
        self.spark = session
        # Where state tables keep their files: a directory per table with one sub-directory per
        # version (see the module doc). Default: the session's warehouse dir.
        self.state_location = state_location or os.environ.get("CLAUDE_BATCH_SPARK_STATE_LOCATION") or \
            self.spark.conf.get("spark.sql.warehouse.dir")
        self._temps: set[str] = set()
        self._cached: dict[str, Any] = {}  # materialised session-scoped relations, by name
        self._rewritten: dict[str, str] = {}  # state tables rewritten by this run → their root directory

    @classmethod
    def accepts(cls, session: Any) -> bool:
        return type(session).__module__.startswith("pyspark.sql") and hasattr(session, "sql") and \
            hasattr(session, "createDataFrame")

    # ------------------------------------------------------------------ names
    def state_table(self, name: str) -> str:
        prefix = f"{quote_ident(self.database)}." if self.database else ""
        return f"{prefix}{quote_ident(self.state_schema)}.{quote_ident(name)}"

    # ------------------------------------------------------------------ execution
    @contextlib.contextmanager
    def _dialect(self) -> Iterator[None]:
        conf = self.spark.conf
        old = {k: conf.get(k, None) for k in _ANSI}
        for k, v in _ANSI.items():
            conf.set(k, v)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    conf.unset(k)
                else:
                    conf.set(k, v)

    def df(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """A lazy DataFrame of ``sql`` (parsed now, in our dialect settings)."""
        with self._dialect():
            if params:
                return self.spark.sql(sql, args=[_param(p) for p in params])
            return self.spark.sql(sql)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        m = _INSERT_TEMP.match(sql)
        if m and m.group(1) in self._temps:
            self._insert_temp(m.group(1), m.group(2), params)
            return
        with self._dialect():
            self.df(sql, params).collect()  # DDL/DML run eagerly; drain any rows

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._dialect():
            return [tuple(r) for r in self.df(sql, params).collect()]

    def fetch_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict]:
        with self._dialect():
            return [r.asDict() for r in self.df(sql, params).collect()]

    def fetch_arrays(self, sql: str) -> dict[str, Any]:
        with self._dialect():
            table = self.df(sql).toArrow()
        return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}

    def iter_arrow(self, sql: str, batch_rows: int = 4096) -> Iterator[Any]:
        # The result is collected by the driver as Arrow (Spark's own transfer): callers stream
        # bounded slices (a batch's requests), never a whole backlog of texts at once.
        with self._dialect():
            table = self.df(sql).toArrow()
        yield from table.to_batches(max_chunksize=batch_rows)

    def relation(self, sql: str) -> Any:
        """The model's table, computed now (a local checkpoint: no lineage back to this run's scratch
        relations), after which the scratch relations are released: a long-lived cluster session
        runs the model every night and must not keep every run's texts cached."""
        frame = self.df(sql).localCheckpoint(eager=True)
        self.release()
        return frame

    def release(self) -> None:
        """Drop every session-scoped relation this run made (and free what they cached), then the
        older versions of the state tables this run rewrote."""
        for name in list(self._temps):
            self.drop_temp(name)
        for name, root in list(self._rewritten.items()):
            current = _local_path(self._location(name) or "")
            for version in Path(_local_path(root)).glob("v*"):
                if str(version) != current.rstrip("/") and re.fullmatch(r"v\d+", version.name):
                    _remove_dir(str(version))
        self._rewritten.clear()

    def source_sql(self, source: Any) -> str | None:
        """A DataFrame (what ``dbt.ref``/``dbt.source`` give a model on a Spark adapter), registered
        as a session view for this run; None for anything else (a table name: the caller's)."""
        if hasattr(source, "createOrReplaceTempView"):
            name = self.temp_name("source")
            self._register(name, source)
            return quote_ident(name)
        return None

    # ------------------------------------------------------------------ session-scoped relations
    def _register(self, name: str, frame: Any) -> None:
        old = self._cached.pop(name, None)
        frame.createOrReplaceTempView(name)
        self._temps.add(name)
        if old is not None:
            old.unpersist()

    def _materialize(self, frame: Any) -> Any:
        """``frame`` computed once now and kept (memory, then disk) until its relation is dropped.
        (Not localCheckpoint: SQL over a checkpointed view can fail to resolve its columns.)"""
        frame = frame.persist()
        frame.count()
        return frame

    def create_temp_table(self, name: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        # Computed once and kept, so later reads do not re-run the query (nor see later changes of
        # the tables it read).
        frame = self._materialize(self.df(select_sql, params))
        self._register(name, frame)
        self._cached[name] = frame

    def create_temp_view(self, name: str, select_sql: str) -> None:
        self._register(name, self.df(select_sql))

    def drop_temp(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._temps.discard(name)
        old = self._cached.pop(name, None)
        if old is not None:
            old.unpersist()

    def create_staging(self, name: str, columns: Mapping[str, str]) -> None:
        schema = ", ".join(f"`{c}` {to_spark_type(t)}" for c, t in columns.items())
        self._register(name, self.spark.createDataFrame([], schema))

    def _insert_temp(self, name: str, select_sql: str, params: Sequence[Any] | None) -> None:
        current = self.spark.table(name)
        new = self.df(select_sql, params)
        new = new.toDF(*current.columns).select(*[new[c].cast(current.schema[c].dataType) for c in current.columns])
        frame = self._materialize(current.unionByName(new))
        self._register(name, frame)
        self._cached[name] = frame

    @contextlib.contextmanager
    def arrow_relation(self, table: Any) -> Iterator[str]:
        name = self.temp_name("arrow")
        self._register(name, self.spark.createDataFrame(table))
        try:
            yield quote_ident(name)
        finally:
            self.drop_temp(name)

    def drop_column(self, name: str, column: str) -> None:
        self._register(name, self.spark.table(name).drop(column))

    # ------------------------------------------------------------------ single-table writes
    def _table_frame(self, table: str, frame: Any) -> Any:
        """``frame``'s columns cast to ``table``'s, in its order; a column it lacks is NULL."""
        from pyspark.sql import functions as F

        target = self.spark.table(spark_name(table)).schema
        have = set(frame.columns)
        return frame.select(*[(frame[f.name] if f.name in have else F.lit(None)).cast(f.dataType).alias(f.name)
                              for f in target.fields])

    def append(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        if not columns or not len(next(iter(columns.values()))):
            return
        import pyarrow as pa

        frame = self.spark.createDataFrame(pa.table({k: list(v) for k, v in columns.items()}))
        self._table_frame(table, frame).write.insertInto(spark_name(table))

    def append_select(self, table: str, columns: Sequence[str], select_sql: str,
                      params: Sequence[Any] | None = None) -> None:
        frame = self.df(select_sql, params)
        frame = frame.toDF(*columns)
        # Checkpointed first: the query may read the table it appends to.
        staged = self._materialize(self._table_frame(table, frame))
        try:
            staged.write.insertInto(spark_name(table))
        finally:
            staged.unpersist()

    def update(self, table: str, values: Mapping[str, Any], where_sql: str,
               params: Sequence[Any] | None = None) -> None:
        cols = [f.name for f in self.spark.table(spark_name(table)).schema.fields]
        bound: list[Any] = []
        exprs = []
        for c in cols:
            if c in values:
                v = values[c]
                if isinstance(v, Sql):
                    exprs.append(f"CASE WHEN {where_sql} THEN {v} ELSE {quote_ident(c)} END AS {quote_ident(c)}")
                    bound.extend(params or [])
                else:
                    exprs.append(f"CASE WHEN {where_sql} THEN ? ELSE {quote_ident(c)} END AS {quote_ident(c)}")
                    bound.extend([*(params or []), v])
            else:
                exprs.append(quote_ident(c))
        self._rewrite(table, self.df(f"SELECT {', '.join(exprs)} FROM {table}", bound))

    def update_from(self, table: str, keys: Sequence[str], source_sql: str, columns: Sequence[str],
                    params: Sequence[Any] | None = None) -> None:
        cols = [f.name for f in self.spark.table(spark_name(table)).schema.fields]
        on = " AND ".join(f"t.{quote_ident(k)} = cb_src.{quote_ident(k)}" for k in keys)
        matched = f"cb_src.{quote_ident(keys[0])} IS NOT NULL"
        exprs = [f"CASE WHEN {matched} THEN cb_src.{quote_ident(c)} ELSE t.{quote_ident(c)} END AS {quote_ident(c)}"
                 if c in columns else f"t.{quote_ident(c)}" for c in cols]
        self._rewrite(table, self.df(
            f"SELECT {', '.join(exprs)} FROM {table} t LEFT JOIN ({source_sql}) cb_src ON {on}", params))

    def delete(self, table: str, where_sql: str, params: Sequence[Any] | None = None) -> None:
        self._rewrite(table, self.df(f"SELECT * FROM {table} WHERE NOT coalesce(({where_sql}), false)", params))

    def replace_where(self, table: str, where_sql: str, select_sql: str,
                      params: Sequence[Any] | None = None) -> None:
        # Kept and new rows as two plans, unioned: one statement reading the same session relation
        # twice trips Spark's analyzer (a HAVING's attributes after self-join de-duplication).
        params = list(params or [])
        n_where = where_sql.count("?")
        kept = self.df(f"SELECT * FROM {table} WHERE NOT coalesce(({where_sql}), false)", params[:n_where])
        new = self.df(select_sql, params[n_where:])
        self._rewrite(table, kept.unionAll(new.toDF(*kept.columns)))

    def replace(self, table: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        self._rewrite(table, self.df(select_sql, params))

    def _rewrite(self, table: str, frame: Any) -> None:
        """``table``'s rows become ``frame``'s, in one atomic switch: the new version is written to a
        directory of its own, then the table is pointed at it (the old version stays intact until
        then, so a crash leaves one complete version or the other)."""
        name = spark_name(table)
        frame = self._table_frame(table, frame)
        root = self._table_root(table)
        new = f"{root}/v{time.time_ns()}"
        frame.write.mode("errorifexists").parquet(new)
        with self._dialect():
            self.spark.sql(f"ALTER TABLE {name} SET LOCATION {quote_literal(new)}")
        self.spark.catalog.refreshTable(name)
        # Older versions stay until the run ends (release): a cached relation of this run that
        # Spark recomputes from its lineage reads the version it was made from.
        self._rewritten[name] = root

    def _location(self, name: str) -> str | None:
        rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        for r in rows:
            if r[0] == "Location":
                return str(r[1])
        return None

    def _table_root(self, table: str) -> str:
        parts = name_parts(table)
        return f"{_local_path(self.state_location)}/{'/'.join(p for p in parts)}"

    # ------------------------------------------------------------------ schema
    def ensure_schema(self) -> None:
        prefix = f"`{self.database}`." if self.database else ""
        with self._dialect():
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {prefix}`{self.state_schema}`")

    def state_columns(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if not self.spark.catalog.databaseExists(self.state_schema):
            return out
        for table in self.spark.catalog.listTables(self.state_schema):
            if table.tableType == "VIEW" or table.isTemporary:
                continue
            cols = self.spark.catalog.listColumns(f"{self.state_schema}.{table.name}")
            out[table.name] = {c.name: _FROM_SPARK.get(c.dataType.lower(), c.dataType.upper()) for c in cols}
        return out

    def state_relations(self) -> set[str]:
        """Names of the tables and views in the state schema."""
        if not self.spark.catalog.databaseExists(self.state_schema):
            return set()
        return {t.name for t in self.spark.catalog.listTables(self.state_schema) if not t.isTemporary}

    def create_table(self, table: str, columns_ddl: str) -> None:
        """A Parquet table at the newest complete version under its directory (a session that finds
        state written by an earlier one picks it up), or an empty first version."""
        name = spark_name(table)
        if self._exists(name):
            return
        root = self._table_root(table)
        location = _newest_version(root) or f"{root}/v0"
        with self._dialect():
            self.spark.sql(f"CREATE TABLE IF NOT EXISTS {name} ({to_spark_type(columns_ddl)}) USING parquet "
                           f"LOCATION {quote_literal(location)}")

    def _exists(self, name: str) -> bool:
        try:
            return bool(self.spark.catalog.tableExists(name.replace("`", "")))
        except Exception:
            return False

    def create_view(self, view: str, select_sql: str) -> None:
        with self._dialect():
            self.spark.sql(f"CREATE OR REPLACE VIEW {spark_name(view)} AS {select_sql}")

    def add_column(self, table: str, column: str, type_sql: str) -> None:
        with self._dialect():
            self.spark.sql(f"ALTER TABLE {spark_name(table)} ADD COLUMNS (`{column.strip(chr(34))}` "
                           f"{to_spark_type(type_sql)})")

    def rebuild_table(self, table: str, columns_ddl: str, copy: dict[str, str]) -> None:
        # Spark keeps a column's type in the catalog: a new table definition over a rewritten copy.
        cols = ", ".join(f"{expr} AS {quote_ident(c)}" for c, expr in copy.items())
        frame = self.df(f"SELECT {cols} FROM {table}").localCheckpoint(eager=True)
        name = spark_name(table)
        root = self._table_root(table)
        new = f"{root}/v{time.time_ns()}"
        frame.write.parquet(new)
        with self._dialect():
            self.spark.sql(f"DROP TABLE {name}")
            self.spark.sql(f"CREATE TABLE {name} ({to_spark_type(columns_ddl)}) USING parquet "
                           f"LOCATION {quote_literal(new)}")

    def table_exists(self, relation_sql: str) -> bool:
        try:
            self.df(f"SELECT 1 FROM {relation_sql} LIMIT 0").schema
            return True
        except Exception as exc:
            if "TABLE_OR_VIEW_NOT_FOUND" in str(exc) or "SCHEMA_NOT_FOUND" in str(exc):
                return False
            raise

    def columns_of(self, relation_sql: str) -> list[str]:
        return list(self.df(f"SELECT * FROM {relation_sql} LIMIT 0").columns)

    # ------------------------------------------------------------------ dialect: types
    def text_key_type(self) -> str:
        return "VARCHAR"  # the key's UUID text (DuckDB stores the same value as a UUID)

    def fingerprint_type(self) -> str:
        return "BIGINT"

    def string_list_type(self) -> str:
        return "ARRAY<STRING>"

    # ------------------------------------------------------------------ dialect: expressions
    def hash_sql(self, expr: str) -> str:
        return self.reverse_uuid_sql(f"md5({expr})")

    def reverse_uuid_sql(self, hex_expr: str) -> str:
        digits = f"concat_ws('', reverse(regexp_extract_all(replace(CAST({hex_expr} AS STRING), '-', ''), '(..)', 1)))"
        return f"regexp_replace({digits}, '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', '$1-$2-$3-$4-$5')"

    def fingerprint_sql(self, *exprs: str) -> str:
        return f"xxhash64({', '.join(exprs)})"

    def set_digest_sql(self, *exprs: str) -> str:
        return f"CAST(bit_xor(xxhash64({', '.join(exprs)})) AS STRING)"

    def text_sql(self, expr: str) -> str:
        return f"CAST({expr} AS STRING)"

    def now_sql(self) -> str:
        return "CAST(to_utc_timestamp(current_timestamp(), current_timezone()) AS TIMESTAMP_NTZ)"

    def seconds_between_sql(self, start: str, end: str) -> str:
        return f"(unix_micros(CAST({end} AS TIMESTAMP)) - unix_micros(CAST({start} AS TIMESTAMP))) / 1e6"

    def time_bucket_sql(self, unit: str, expr: str) -> str:
        if unit not in ("minute", "hour", "day"):
            raise ValueError(f"time bucket {unit!r}: minute, hour or day")
        return f"CAST(date_trunc({quote_literal(unit)}, {expr}) AS TIMESTAMP_NTZ)"

    def json_inner_sql(self, expr: str) -> str:
        j = f"to_json(array({expr}))"  # ["..."]: the string as JSON, between 2 characters each side
        return f"substring({j}, 3, length({j}) - 4)"

    def regexp_matches_sql(self, expr: str, pattern: str) -> str:
        # Spark's parser unescapes backslashes in string literals: a regex's \\s must reach it doubled.
        return f"regexp({expr}, {pattern.replace(chr(92), chr(92) * 2)})"

    def list_sort_sql(self, expr: str) -> str:
        return f"array_sort({expr})"

    def list_first_sql(self, expr: str) -> str:
        return f"try_element_at({expr}, 1)"

    def list_join_sql(self, expr: str, sep: str) -> str:
        return f"array_join({expr}, {sep})"

    def arg_max_sql(self, value: str, order: str) -> str:
        return f"max_by({value}, {order})"

    def arg_min_sql(self, value: str, order: str) -> str:
        return f"min_by({value}, {order})"

    def outcome_order_sql(self, succeeded: str, attempt: str, at: str) -> str:
        return f"struct(CAST({succeeded} AS INT), coalesce({attempt}, 0), coalesce(unix_micros(CAST({at} AS TIMESTAMP)), 0))"

    def row_number_sql(self) -> str:
        # Spark's windows need an ORDER BY: the rows' own order (no sort of the texts).
        return "row_number() OVER (ORDER BY monotonically_increasing_id())"

    def int_div_sql(self, a: str, b: str) -> str:
        return f"(({a}) DIV ({b}))"

    def row_id_sql(self, alias: str = "") -> str:
        # A row's file and position in it: stable while the table's files are (within one read).
        p = f"{alias}." if alias else ""
        return f"concat({p}_metadata.file_name, ':', CAST({p}_metadata.row_index AS STRING))"

    def starts_with_sql(self, expr: str, prefix: str) -> str:
        return f"startswith({expr}, {quote_literal(prefix)})"

    # ------------------------------------------------------------------ bulk reads
    def read_jsonl_sql(self, path: str | os.PathLike, columns: dict[str, str]) -> str:
        name = self.temp_name("jsonl")
        schema = ", ".join(f"`{c}` {'STRING' if t.upper() == 'JSON' else to_spark_type(t)}" for c, t in columns.items())
        # A JSON-typed column declared STRING keeps the object's raw JSON text (Spark's reader).
        self._register(name, self.spark.read.schema(schema).json(str(path)))
        return quote_ident(name)

    def stage_batch_results(self, path: str, *, requests_table: str, submission_key: str,
                            shape: ResultShape) -> StagedResults:
        from . import _spark_results

        self.create_staging(STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS)
        return _spark_results.stage(self, path, requests_table=requests_table, submission_key=submission_key,
                                    shape=shape, request_columns=STAGE_REQUESTS_COLUMNS)

    # ------------------------------------------------------------------ locks
    def acquire_lock(self, table: str, classifier: str, owner: str, stale_after_s: float) -> None:
        """Check and take the classifier's lock row in one rewrite of the lock table. Plain Spark
        tables cannot make the check and the write one transaction: two runs starting in the same
        second could both pass; dbt's scheduler runs a model once at a time, which is what holds."""
        row = self.fetchall(
            f"SELECT owner, {self.seconds_between_sql('acquired_at', self.now_sql())} FROM {table} WHERE classifier = ?",
            [classifier])
        if row and row[0][0] != owner and row[0][1] is not None and row[0][1] < stale_after_s:
            raise LockedError(
                f"classifier {classifier!r} is being run by {row[0][0]} (lock taken {row[0][1]:.0f}s ago); "
                "this run stops without submitting anything. It is safe to run again later.")
        self.replace_where(table, "classifier = ?",
                           f"SELECT ?, ?, {self.now_sql()}", [classifier, classifier, owner])

    def release_lock(self, table: str, classifier: str, owner: str) -> None:
        self.delete(table, "classifier = ? AND owner = ?", [classifier, owner])


def _param(value: Any) -> Any:
    """Spark binds Python values; a datetime with a zone is taken as UTC wall time (the state's)."""
    from datetime import datetime, timezone

    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _local_path(location: str) -> str:
    """A ``file:`` URI as a local path (other schemes unchanged)."""
    return re.sub(r"^file:/*", "/", location) if location.startswith("file:") else location


def _newest_version(root: str) -> str | None:
    """The newest complete version directory under a table's root (local file systems; a cluster's
    catalog keeps the location itself)."""
    base = Path(_local_path(root))
    if not base.is_dir():
        return None
    done = [p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"v\d+", p.name) and (p / "_SUCCESS").exists()]
    if not done:
        return None
    return str(max(done, key=lambda p: int(p.name[1:])))


def _remove_dir(location: str) -> None:
    import shutil

    path = _local_path(location)
    if path.startswith(("/", ".")) and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
