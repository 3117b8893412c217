"""The warehouse boundary: what the classifier asks of an engine, and nothing engine-specific.

Every statement whose text depends on the engine lives behind :class:`Warehouse`, in one module per
engine (``duckdb.py``, ``spark.py``), the way dbt-duckdb keeps its backends interchangeable behind one
abstract class. The rest of the package writes portable SQL (ANSI joins, CASE, aggregates with
``FILTER``, window functions, ``?`` parameters) and asks the engine for the rest through three kinds
of member:

- **dialect templates** (``*_sql`` methods, ``*_type`` methods): a fragment of SQL for one construct
  whose spelling differs (a hash, a list function, an arg_max, a type name);
- **named operations**: a whole step whose best form differs (parse a results file, a temp table,
  load an Arrow table, take a lock);
- **single-table writes** (``append``, ``append_select``, ``update``, ``update_from``, ``delete``,
  ``replace``): the only ways the state tables change. Each is ONE atomic write to ONE table, durable
  when it returns (an append, or a rewrite of that one table), so the state machine needs no
  multi-table transaction and holds on plain Spark tables as on DuckDB, Delta, Iceberg, Snowflake
  and BigQuery. Engines without in-place ``UPDATE``/``DELETE`` (plain Spark tables) implement them
  as one rewrite of the table (``INSERT OVERWRITE``); ``supports_update`` / ``supports_merge`` say
  which the engine has (docs/state-machine.md, "Single-table writes").

Parameters are positional ``?`` everywhere (DuckDB, and Spark 3.5+ ``spark.sql(q, args=[...])``).
Identifiers are quoted with ``Warehouse.q`` (standard SQL double quotes by default); an engine whose
quote differs (Spark: backticks) overrides it, and every identifier outside the package goes through it.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

from ..errors import ClaudeBatchError


def quote_ident(name: str) -> str:
    """Quote any identifier, however hostile (spaces, quotes, reserved words)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal (standard SQL: a quote is doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


# A result line's usage, read once into a struct ``u``, as the request columns of cb_requests (portable
# SQL, used by every engine's results parser). Cache writes by TTL when the API breaks them down, else the
# single cache_creation_input_tokens figure counts as 5-minute writes (reference: anthropic-api.md, usage).
USAGE_SQL = {
    "input_tokens": "coalesce(u.input_tokens, 0)",
    "output_tokens": "coalesce(u.output_tokens, 0)",
    "cache_write_5m_tokens": """CASE WHEN u.cache_creation IS NULL THEN coalesce(u.cache_creation_input_tokens, 0)
        ELSE coalesce(u.cache_creation.ephemeral_5m_input_tokens, 0) END""",
    "cache_write_1h_tokens": "coalesce(u.cache_creation.ephemeral_1h_input_tokens, 0)",
    "cache_read_tokens": "coalesce(u.cache_read_input_tokens, 0)",
    "service_tier": "coalesce(u.service_tier, 'standard')",
    "thinking_tokens": "coalesce(u.output_tokens_details.thinking_tokens, 0)",
}


class Sql(str):
    """A SQL expression where a write takes values (``Warehouse.update``): inlined, not bound."""


class LockedError(ClaudeBatchError, RuntimeError):
    """Another run holds the classifier's lock."""


@dataclass(frozen=True)
class ResultShape:
    """What an engine needs to parse a batch results file into staged outcomes
    (:meth:`Warehouse.stage_batch_results`); plain values, so the engine imports nothing above it.

    ``billed_sql`` maps the usage expressions (``input_tokens``, ``output_tokens``,
    ``cache_write_5m_tokens``, ``cache_write_1h_tokens``, ``cache_read_tokens``, ``service_tier``,
    ``thinking_tokens``, each a SQL expression) to the SQL of the request's billed dollars.
    """

    answer_format: str  # 'grouped' ({"groups": [{"label", "ids"}]}) or 'keyed' ({"rows": [{"id", "label(s)"}]})
    multi_label: bool
    label_names: tuple[str, ...]
    label_tokens: tuple[int, ...]  # output tokens of a one-row answer naming each label (the naive baseline)
    billed_sql: Callable[[Mapping[str, str]], str]
    max_raw_chars: int = 4_000


@dataclass
class StagedResults:
    """What :meth:`Warehouse.stage_batch_results` leaves behind.

    ``outcomes_sql``: a SELECT of (ln, item_id, status, labels, error, answer_tokens), one row per
    (request line, row id) an answer names and judged; ``odd``: (ln, custom_id, item_count,
    message_json) of succeeded lines whose answer SQL could not read (several text blocks, code
    fences, cut by max_tokens), for the Python parser to stage into ``STAGE_ANSWERS``.
    """

    outcomes_sql: str
    odd: list[tuple[int, str, int, str]] = field(default_factory=list)
    unknown_lines: int = 0  # lines whose custom_id the submission never sent (ignored; the caller warns)


# Session-scoped staging relations every engine provides under these names (columns in
# STAGE_*_COLUMNS), so that portable SQL can read them.
STAGE_REQUESTS = "cb_tmp_req"
STAGE_ANSWERS = "cb_tmp_ans"
STAGE_REQUESTS_COLUMNS = {
    "ln": "INTEGER", "custom_id": "VARCHAR", "status": "VARCHAR", "error_type": "VARCHAR",
    "error_message": "VARCHAR", "input_tokens": "BIGINT", "output_tokens": "BIGINT",
    "cache_write_5m_tokens": "BIGINT", "cache_write_1h_tokens": "BIGINT", "cache_read_tokens": "BIGINT",
    "service_tier": "VARCHAR", "billed_usd": "DOUBLE", "raw_answer": "VARCHAR", "thinking_tokens": "BIGINT",
}
STAGE_ANSWERS_COLUMNS = {
    "ln": "INTEGER", "item_id": "INTEGER", "status": "VARCHAR", "labels": "LIST<VARCHAR>", "error": "VARCHAR",
    "answer_tokens": "INTEGER",
}


class Warehouse(abc.ABC):
    """One engine's implementation of everything the classifier asks of a warehouse.

    ``Warehouse(session, database=..., state_schema=...)`` picks the engine that accepts the session
    (a DuckDB connection or dbt-duckdb's cursor wrapper, a SparkSession, ...): engines register by
    subclassing and answering :meth:`accepts`.
    """

    dialect: ClassVar[str] = ""
    # Capabilities. supports_update: UPDATE/DELETE of rows in place (else update/delete rewrite the
    # one table). supports_merge: MERGE INTO. supports_transactions: BEGIN/COMMIT across statements
    # (the state machine never needs it; only the lock and upgrades of older DuckDB state use it).
    supports_update: ClassVar[bool] = False
    supports_merge: ClassVar[bool] = False
    supports_transactions: ClassVar[bool] = False
    # How text keys are computed (see hash_sql), the same in every engine so state moves between them:
    # the md5 of the text's UTF-8 bytes, byte order reversed, as a UUID (engines without a UUID type
    # store its canonical string). Stored in cb_meta so a change is converted, not mixed.
    TEXT_KEY_SCHEME: ClassVar[str] = "md5-reversed-uuid"

    _engines: ClassVar[list[type["Warehouse"]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.dialect and cls not in Warehouse._engines:
            Warehouse._engines.append(cls)

    def __new__(cls, session: Any = None, *args: Any, **kwargs: Any) -> "Warehouse":
        if cls is Warehouse:
            cls = engine_for(session)
        return super().__new__(cls)

    def __init__(self, session: Any, *, database: str | None = None, state_schema: str = "claude_batch"):
        self.con = session
        self.database = database
        self.state_schema = state_schema

    @classmethod
    @abc.abstractmethod
    def accepts(cls, session: Any) -> bool:
        """True if ``session`` (what the dbt adapter hands a Python model) is this engine's."""

    # ------------------------------------------------------------------ names
    def q(self, name: str) -> str:
        """A quoted identifier (see the module doc)."""
        return quote_ident(name)

    def state_table(self, name: str) -> str:
        """The qualified name of state table ``name`` in the configured database and schema."""
        prefix = f"{self.q(self.database)}." if self.database else ""
        return f"{prefix}{self.q(self.state_schema)}.{self.q(name)}"

    def temp_name(self, stem: str) -> str:
        """A fresh name for a session-scoped relation (unique per call)."""
        return f"cb_tmp_{stem}_{uuid.uuid4().hex[:8]}"

    # ------------------------------------------------------------------ execution
    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement (``?`` parameters), result discarded. A write through ``execute`` is the
        engine's business: state-table writes go through the single-table writes below."""

    @abc.abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """All rows of a query as tuples (small results only: counts, a few hundred rows)."""

    @abc.abstractmethod
    def fetch_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict]:
        """All rows of a query as dicts by column name (small results only)."""

    @abc.abstractmethod
    def fetch_arrays(self, sql: str) -> dict[str, Any]:
        """A query's columns as numpy arrays by name (many small rows, no Python object per row)."""

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = self.fetchall(sql, params)
        return rows[0][0] if rows else None

    @abc.abstractmethod
    def iter_arrow(self, sql: str, batch_rows: int = 4096) -> Iterator[Any]:
        """A query's result as pyarrow RecordBatches of about ``batch_rows`` rows (bounded memory)."""

    @abc.abstractmethod
    def relation(self, sql: str) -> Any:
        """The engine's lazy relation for a query (DuckDBPyRelation, Spark DataFrame): what a dbt
        Python model returns as its table."""

    def source_sql(self, source: Any) -> str | None:
        """SQL naming a source the model passed that only this engine knows (a Spark DataFrame), or
        None: table names and dbt relations are the caller's (``source.relation_sql``)."""
        return None

    def upgrade_text_keys(self, tables: Sequence[str], meta_table: str, scheme: str) -> None:
        """Give ``tables``' ``text_hash`` column this scheme's keys where state written under the
        earlier one (``md5(text)::UUID``) exists, and record ``scheme`` under key ``text_key`` in
        ``meta_table`` (key, value). Only DuckDB ever wrote the earlier scheme; an engine born after
        it has nothing to convert and just records the marker (this default)."""
        self.replace_where(meta_table, "key = ?", "SELECT ?, ?", ["text_key", "text_key", scheme])

    # ------------------------------------------------------------------ session-scoped relations
    @abc.abstractmethod
    def create_temp_table(self, name: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        """Materialise ``select_sql`` as session-scoped relation ``name`` (unquoted, from
        ``temp_name`` or a fixed ``cb_tmp_*`` name), replacing one of that name. Computed once: later
        reads do not re-run the query. Never a state table; gone when the session ends."""

    @abc.abstractmethod
    def create_temp_view(self, name: str, select_sql: str) -> None:
        """Session-scoped view ``name`` over ``select_sql`` (re-evaluated on each read), replacing one."""

    @abc.abstractmethod
    def drop_temp(self, name: str) -> None:
        """Drop session-scoped relation ``name`` (table or view) if it exists."""

    @abc.abstractmethod
    def create_staging(self, name: str, columns: Mapping[str, str]) -> None:
        """An empty session-scoped table ``name`` with ``columns`` (name → portable type: VARCHAR,
        INTEGER, BIGINT, DOUBLE, BOOLEAN, TIMESTAMP, LIST<VARCHAR>), replacing one of that name."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def arrow_relation(self, table: Any) -> Iterator[str]:
        """A pyarrow Table readable by SQL for the duration of the block: yields its (quoted) name."""

    @abc.abstractmethod
    def drop_column(self, name: str, column: str) -> None:
        """Drop a column from session-scoped table ``name`` (frees memory before the next step)."""

    # ------------------------------------------------------------------ single-table writes
    # Each: one atomic write to one table, durable (committed) when it returns, never inside a
    # transaction the caller holds open. Repeating one after a crash must be harmless: callers make
    # them idempotent (append guarded by a NOT EXISTS, update of a value to itself).
    @abc.abstractmethod
    def append(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Append rows given as columns (name → equal-length sequences) to ``table``, in one write
        (one Arrow table, not a statement per row). No rows: no write."""

    @abc.abstractmethod
    def append_select(self, table: str, columns: Sequence[str], select_sql: str,
                      params: Sequence[Any] | None = None) -> None:
        """``INSERT INTO table (columns) select_sql``: append a query's rows in one write. The query
        may read ``table`` itself (a ``NOT EXISTS`` guard that makes the append idempotent)."""

    @abc.abstractmethod
    def update(self, table: str, values: Mapping[str, Any], where_sql: str,
               params: Sequence[Any] | None = None) -> None:
        """Set columns to values (Python values, bound as parameters, or :class:`Sql` expressions over
        the row) on the rows of ``table`` that match ``where_sql`` (its ``?`` bound to ``params``),
        in one write. Without in-place UPDATE:
        one rewrite of the table (``INSERT OVERWRITE ... SELECT CASE WHEN where ...``)."""

    @abc.abstractmethod
    def update_from(self, table: str, keys: Sequence[str], source_sql: str, columns: Sequence[str],
                    params: Sequence[Any] | None = None) -> None:
        """Set ``columns`` of the rows of ``table`` whose ``keys`` match a row of ``source_sql`` to that
        row's values of the same names (at most one source row per key), in one write: DuckDB
        ``UPDATE ... FROM``, Delta/Iceberg ``MERGE``, plain Spark one rewrite with a left join."""

    @abc.abstractmethod
    def delete(self, table: str, where_sql: str, params: Sequence[Any] | None = None) -> None:
        """Remove the rows of ``table`` that match ``where_sql``, in one write (a rewrite without them
        where the engine has no DELETE)."""

    @abc.abstractmethod
    def replace_where(self, table: str, where_sql: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        """Replace the rows of ``table`` that match ``where_sql`` by the rows of ``select_sql`` (all of
        the table's columns, in order), in one atomic write: DuckDB DELETE + INSERT in one
        transaction, Spark one ``INSERT OVERWRITE`` of (kept rows UNION ALL new rows). ``params`` bind
        the ``?`` of ``where_sql`` first, then those of ``select_sql``. The query may read ``table``."""

    @abc.abstractmethod
    def replace(self, table: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
        """Replace every row of ``table`` by the rows of ``select_sql`` (same columns, same order), in
        one atomic write (``INSERT OVERWRITE``; DuckDB: DELETE + INSERT in one transaction). The query
        may read ``table``."""

    # ------------------------------------------------------------------ schema
    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create the state schema if it does not exist (idempotent)."""

    @abc.abstractmethod
    def state_relations(self) -> set[str]:
        """Names of the tables and views in the state schema (one catalog query; never fails when the
        schema does not exist: inside dbt's open transaction a failed statement aborts it)."""

    @abc.abstractmethod
    def state_columns(self) -> dict[str, dict[str, str]]:
        """Column names and types (as ``state_type`` spells them) of every table in the state
        schema, by table name."""

    @abc.abstractmethod
    def create_table(self, table: str, columns_ddl: str) -> None:
        """``CREATE TABLE IF NOT EXISTS table (columns_ddl)``; ``columns_ddl`` uses the types the
        ``*_type`` templates return and NOT NULL (which an engine may drop)."""

    @abc.abstractmethod
    def create_view(self, view: str, select_sql: str) -> None:
        """Create or replace view ``view`` over ``select_sql``."""

    @abc.abstractmethod
    def add_column(self, table: str, column: str, type_sql: str) -> None:
        """Add a nullable column to a state table (upgrade of older state)."""

    @abc.abstractmethod
    def rebuild_table(self, table: str, columns_ddl: str, copy: dict[str, str]) -> None:
        """Replace ``table`` by one with ``columns_ddl``, filled from the old one (target column → SQL
        expression over the old columns). Atomic: an interrupted upgrade leaves the old table."""

    @abc.abstractmethod
    def table_exists(self, relation_sql: str) -> bool:
        """True if ``relation_sql`` (a qualified, quoted name) can be read."""

    @abc.abstractmethod
    def columns_of(self, relation_sql: str) -> list[str]:
        """Column names of a relation or query, in order."""

    # ------------------------------------------------------------------ dialect templates: types
    @abc.abstractmethod
    def text_key_type(self) -> str:
        """Column type of ``hash_sql``'s values."""

    @abc.abstractmethod
    def fingerprint_type(self) -> str:
        """Column type of ``fingerprint_sql``'s values."""

    @abc.abstractmethod
    def string_list_type(self) -> str:
        """Column type of a list of strings (labels)."""

    # ------------------------------------------------------------------ dialect templates: expressions
    @abc.abstractmethod
    def hash_sql(self, expr: str) -> str:
        """Key of a text (``TEXT_KEY_SCHEME``): equal texts, equal keys; the same key in every
        engine for the same text, so state moves between engines."""

    @abc.abstractmethod
    def reverse_uuid_sql(self, hex_expr: str) -> str:
        """A text key from 32 hex digits with the byte order reversed (older state's keys)."""

    @abc.abstractmethod
    def fingerprint_sql(self, *exprs: str) -> str:
        """A cheap 64-bit fingerprint of values: tells a row seen before from a new or changed one."""

    @abc.abstractmethod
    def set_digest_sql(self, *exprs: str) -> str:
        """Aggregate: an order-independent digest (a string) of the group's rows."""

    @abc.abstractmethod
    def text_sql(self, expr: str) -> str:
        """``expr`` cast to the engine's string type."""

    @abc.abstractmethod
    def now_sql(self) -> str:
        """The current time as a timestamp without time zone (UTC)."""

    @abc.abstractmethod
    def seconds_between_sql(self, start: str, end: str) -> str:
        """Seconds (a double) from timestamp ``start`` to timestamp ``end``."""

    @abc.abstractmethod
    def time_bucket_sql(self, unit: str, expr: str) -> str:
        """A timestamp truncated to its ``unit`` ('minute', 'hour', 'day'): time series of the report."""

    @abc.abstractmethod
    def json_inner_sql(self, expr: str) -> str:
        """A text as it is inside a JSON string literal (escaped, without the quotes)."""

    @abc.abstractmethod
    def regexp_matches_sql(self, expr: str, pattern: str) -> str:
        """True if regular expression ``pattern`` (a SQL string literal) matches part of ``expr``."""

    @abc.abstractmethod
    def list_sort_sql(self, expr: str) -> str:
        """A list column sorted ascending."""

    @abc.abstractmethod
    def list_join_sql(self, expr: str, sep: str) -> str:
        """A list of strings joined with ``sep`` (a SQL string literal)."""

    @abc.abstractmethod
    def row_number_sql(self) -> str:
        """A window numbering a query's rows 1..n densely in no particular order (no sort)."""

    @abc.abstractmethod
    def int_div_sql(self, a: str, b: str) -> str:
        """Integer division of two non-negative integers, rounded down."""

    @abc.abstractmethod
    def list_first_sql(self, expr: str) -> str:
        """The first element of a list (NULL for an empty or NULL list)."""

    def list_contains_sql(self, expr: str, value: str) -> str:
        """True if the list ``expr`` holds ``value`` (a SQL expression). Spark's name; engines may differ."""
        return f"array_contains({expr}, {value})"

    @abc.abstractmethod
    def arg_max_sql(self, value: str, order: str) -> str:
        """Aggregate: ``value`` of the row with the largest ``order``."""

    @abc.abstractmethod
    def arg_min_sql(self, value: str, order: str) -> str:
        """Aggregate: ``value`` of the row with the smallest ``order``."""

    @abc.abstractmethod
    def outcome_order_sql(self, succeeded: str, attempt: str, at: str) -> str:
        """One orderable value ranking a result: a success first, then the higher attempt, then the
        later time (``succeeded`` a boolean, ``attempt`` an integer, ``at`` a timestamp)."""

    @abc.abstractmethod
    def row_id_sql(self, alias: str = "") -> str:
        """An expression identifying a row of a state table within one read (DuckDB's ``rowid``),
        for re-reading a chosen row by id; ``alias`` qualifies it."""

    def materialized_cte(self, name: str, body: str) -> str:
        """``name AS (body)``, computed once where the engine can be told so."""
        return f"{name} AS ({body})"

    def starts_with_sql(self, expr: str, prefix: str) -> str:
        """True if ``expr`` starts with the Python string ``prefix`` (portable: substr, no LIKE escapes)."""
        return f"substr({expr}, 1, {len(prefix)}) = {quote_literal(prefix)}"

    # ------------------------------------------------------------------ bulk reads
    @abc.abstractmethod
    def read_jsonl_sql(self, path: str, columns: dict[str, str]) -> str:
        """A relation over a local JSONL file with ``columns`` (name → type), parsed by the engine."""

    @abc.abstractmethod
    def stage_batch_results(self, path: str, *, requests_table: str, submission_key: str,
                            shape: ResultShape) -> StagedResults:
        """Parse a Message Batches results file (JSONL) with the engine: fill ``STAGE_REQUESTS`` (one
        row per result line of this submission: status, error, usage, billed dollars through
        ``shape.billed_sql``, raw answer) and create an empty ``STAGE_ANSWERS``; return the SQL of the
        rows' outcomes and the lines SQL could not read (:class:`StagedResults`). Lines whose
        custom_id the submission (its rows in ``requests_table``) never sent are ignored and
        counted (``unknown_lines``). Reads only; writes no state table."""

    # ------------------------------------------------------------------ locks
    @abc.abstractmethod
    def acquire_lock(self, table: str, classifier: str, owner: str, stale_after_s: float) -> None:
        """Take the classifier's lock row in ``table`` or raise :class:`LockedError` naming the
        holder (a lock older than ``stale_after_s`` is taken over)."""

    @abc.abstractmethod
    def release_lock(self, table: str, classifier: str, owner: str) -> None:
        """Remove the classifier's lock row if ``owner`` holds it."""


def engine_for(session: Any) -> type[Warehouse]:
    """The engine class that accepts ``session``."""
    from . import duckdb as _duckdb  # noqa: F401  (registers the default engine)

    try:
        from . import spark as _spark  # noqa: F401
    except ImportError:  # no pyspark here, or no Spark engine yet
        pass
    for engine in Warehouse._engines:
        if engine.accepts(session):
            return engine
    raise ClaudeBatchError(
        f"no warehouse engine accepts a session of type {type(session).__module__}.{type(session).__name__}; "
        f"engines: {', '.join(e.dialect for e in Warehouse._engines)}")
