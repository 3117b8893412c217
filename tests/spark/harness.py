"""Run the integration_tests project's Python models the way a dbt adapter does, on either engine.

A Spark-based adapter (dbt-databricks, dbt-bigquery on Dataproc, dbt-glue) imports the model file and
calls ``model(dbt, session)`` with a SparkSession and a ``dbt`` object whose ``ref``/``source`` return
DataFrames, ``config`` records the model's settings, ``this`` names its table and ``is_incremental``
says whether that table exists; then it writes the returned DataFrame into the table by the
incremental strategy (here delete+insert on ``unique_key``, as the models ask). dbt-duckdb does the
same with a DuckDB connection and relations. :class:`ModelRunner` is that caller, with one small
adapter per engine (:class:`SparkTarget`, :class:`DuckDBTarget`), so that the same tests and the same
assertions run on both engines.

Also a command line (``python tests/spark/harness.py --warehouse-dir ... --model ...``): one model run
in a fresh local SparkSession of its own, for the crash tests (the run is killed at a crash point).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "integration_tests" / "models"


@dataclass(frozen=True)
class Relation:
    """What ``dbt.this`` is: database (catalog), schema, identifier; str() is its quoted name."""

    database: str | None
    schema: str
    identifier: str
    quote: str = '"'

    def __str__(self) -> str:
        q = self.quote
        parts = [p for p in (self.database, self.schema, self.identifier) if p]
        return ".".join(f"{q}{p}{q}" for p in parts)


class DbtObject:
    """The ``dbt`` argument of a Python model."""

    def __init__(self, target: "Target", name: str):
        self._target, self.this = target, target.this(name)
        self.configured: dict[str, Any] = {}
        self.is_incremental = target.exists(self.this)

    def config(self, **kwargs: Any) -> None:
        self.configured.update(kwargs)

    def source(self, source_name: str, table: str) -> Any:
        return self._target.source(source_name, table)

    def ref(self, name: str) -> Any:
        return self._target.table(self._target.this(name))


class Target:
    """One engine's side of the harness."""

    session: Any

    def this(self, name: str) -> Relation: ...
    def exists(self, rel: Relation) -> bool: ...
    def source(self, source_name: str, table: str) -> Any: ...
    def table(self, rel: Relation) -> Any: ...
    def write(self, rel: Relation, result: Any, unique_key: list[str]) -> None: ...
    def rows(self, sql: str) -> list[dict]: ...
    def add_source_rows(self, table: str, schema: str, rows: list[tuple]) -> None: ...


class SparkTarget(Target):
    """A SparkSession: sources are Parquet files (so a second session, the crash tests' child, reads
    the same ones), the model's table a Spark table in ``schema``."""

    def __init__(self, spark: Any, schema: str, source_dir: Path, state_schema: str):
        self.session, self.schema, self.source_dir, self.state_schema = spark, schema, Path(source_dir), state_schema
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}`")

    def this(self, name: str) -> Relation:
        return Relation(None, self.schema, name, quote="`")

    def exists(self, rel: Relation) -> bool:
        return bool(self.session.catalog.tableExists(f"{rel.schema}.{rel.identifier}"))

    def source(self, source_name: str, table: str) -> Any:
        return self.session.read.parquet(str(self.source_dir / source_name / table))

    def table(self, rel: Relation) -> Any:
        return self.session.table(str(rel))

    def write(self, rel: Relation, result: Any, unique_key: list[str]) -> None:
        # delete+insert on the key: the table's rows whose key the result does not carry, plus the
        # result's rows; computed first (checkpoint), then the table is replaced.
        if self.exists(rel):
            old = self.session.table(str(rel))
            keys = result.select(*unique_key).distinct()
            merged = old.join(keys, on=unique_key, how="left_anti").unionByName(result.select(*old.columns))
        else:
            merged = result
        merged.localCheckpoint(eager=True).write.mode("overwrite").saveAsTable(str(rel))

    def rows(self, sql: str) -> list[dict]:
        return [r.asDict() for r in self.session.sql(sql).collect()]

    def add_source_rows(self, table: str, schema: str, rows: list[tuple]) -> None:
        path = self.source_dir / "app" / table
        frame = self.session.createDataFrame(rows, schema)
        frame.write.mode("append").parquet(str(path))

    def state(self, table: str) -> str:
        return f"`{self.state_schema}`.`{table}`"

    def main_table(self, name: str) -> str:
        return f"`{self.schema}`.`{name}`"


class DuckDBTarget(Target):
    """A DuckDB connection, as dbt-duckdb hands one to a Python model."""

    def __init__(self, con: Any, state_schema: str):
        self.session, self.state_schema = con, state_schema
        con.execute("CREATE SCHEMA IF NOT EXISTS app")

    def this(self, name: str) -> Relation:
        return Relation(None, "main", name)

    def exists(self, rel: Relation) -> bool:
        return bool(self.session.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [rel.schema, rel.identifier]).fetchone()[0])

    def source(self, source_name: str, table: str) -> Any:
        return self.session.sql(f'SELECT * FROM "{source_name}"."{table}"')

    def table(self, rel: Relation) -> Any:
        return self.session.sql(f"SELECT * FROM {rel}")

    def write(self, rel: Relation, result: Any, unique_key: list[str]) -> None:
        tmp = "cb_harness_result"
        result.create(tmp) if hasattr(result, "create") else None
        if self.exists(rel):
            on = " AND ".join(f't."{k}" = r."{k}"' for k in unique_key)
            self.session.execute(f"DELETE FROM {rel} t WHERE EXISTS (SELECT 1 FROM {tmp} r WHERE {on})")
            self.session.execute(f"INSERT INTO {rel} BY NAME SELECT * FROM {tmp}")
        else:
            self.session.execute(f"CREATE TABLE {rel} AS SELECT * FROM {tmp}")
        self.session.execute(f"DROP TABLE {tmp}")

    def rows(self, sql: str) -> list[dict]:
        cur = self.session.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def add_source_rows(self, table: str, schema: str, rows: list[tuple]) -> None:
        cols = ", ".join(f'"{name}" {typ}' for name, typ in _split_schema(schema))
        self.session.execute(f'CREATE TABLE IF NOT EXISTS app."{table}" ({cols})')
        marks = ", ".join("?" * len(rows[0]))
        self.session.executemany(f'INSERT INTO app."{table}" VALUES ({marks})', [list(r) for r in rows])

    def state(self, table: str) -> str:
        return f'"{self.state_schema}"."{table}"'

    def main_table(self, name: str) -> str:
        return f'"main"."{name}"'


def _split_schema(schema: str) -> list[tuple[str, str]]:
    """'a INT, `b c` STRING' → [('a', 'INTEGER'), ('b c', 'VARCHAR')] (Spark DDL to DuckDB's)."""
    out = []
    for part in schema.split(","):
        name, typ = part.strip().rsplit(" ", 1)
        out.append((name.strip("`"), {"STRING": "VARCHAR", "INT": "INTEGER"}.get(typ.upper(), typ)))
    return out


class ModelRunner:
    """``run(model)``: import the model file, call ``model(dbt, session)`` (with extra settings for
    ``classify`` passed as the model's ``options``, the way a project sets ``meta.claude``), and write
    what it returns as the adapter would."""

    def __init__(self, target: Target, settings: dict | None = None):
        self.target = target
        self.settings = dict(settings or {})

    def run(self, model: str, **settings: Any) -> DbtObject:
        module = _load(MODELS / f"{model}.py")
        dbt = DbtObject(self.target, model)
        import claude_batch

        merged = {**project_settings(), "state_schema": self.target.state_schema, **self.settings, **settings}
        real = claude_batch.classify

        def classify(dbt_obj: Any, session: Any, **kwargs: Any) -> Any:
            options = {**(kwargs.pop("options", None) or {}), **merged}
            return real(dbt_obj, session, options=options, **kwargs)

        module.classify = classify  # the model's own import, given the test's settings as its options
        result = module.model(dbt, self.target.session)
        key = dbt.configured.get("unique_key")
        keys = [k.strip('"') for k in ([key] if isinstance(key, str) else key)]
        self.target.write(dbt.this, result, keys)
        return dbt


_VAR = re.compile(r"^\{\{\s*var\('[^']+',\s*(.+?)\)\s*\}\}$")


def project_settings() -> dict:
    """The integration project's ``+meta: claude`` settings as dbt renders them with no vars given
    (each ``{{ var('name', default) }}`` is its default); unset ones (``none``) are left out."""
    import ast

    import yaml

    project = yaml.safe_load((REPO / "integration_tests" / "dbt_project.yml").read_text())
    raw = project["models"]["claude_batch_integration_tests"]["+meta"]["claude"]
    out = {}
    for name, value in raw.items():
        m = _VAR.match(str(value).strip())
        if m:
            text = m.group(1).strip()
            jinja = {"none": None, "true": True, "false": False}  # Jinja's literals
            value = jinja[text.lower()] if text.lower() in jinja else ast.literal_eval(text)
        if value is not None:
            out[name] = value
    return out


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"cb_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def local_spark(warehouse_dir: str) -> Any:
    """A local SparkSession like the tests' (local[2], few shuffle partitions, UI off)."""
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("claude-batch-harness")
             .config("spark.sql.shuffle.partitions", "1").config("spark.default.parallelism", "2")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.warehouse.dir", warehouse_dir)
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main(argv: list[str] | None = None) -> int:
    """One model run in a fresh SparkSession (the crash tests' child process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--state-schema", required=True)
    parser.add_argument("--model", default="review_sentiment")
    parser.add_argument("--setting", action="append", default=[], help="name=json value")
    args = parser.parse_args(argv)
    import json

    settings = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.setting)}
    spark = local_spark(args.warehouse_dir)
    target = SparkTarget(spark, args.schema, Path(args.source_dir), args.state_schema)
    ModelRunner(target, settings).run(args.model)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "python_udfs"))
    sys.exit(main())
