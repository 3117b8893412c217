"""Helpers shared by the robustness suites (imported by the test modules)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

HERE = Path(__file__).resolve().parent

_spec = importlib.util.spec_from_file_location(
    "claude_batch_tests_integration_conftest", HERE.parent / "integration" / "conftest.py"
)
_integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _integration
_spec.loader.exec_module(_integration)

DbtProject = _integration.DbtProject
API_KEY = _integration.API_KEY
dbt_deps = _integration.dbt_deps  # session fixture: `dbt deps` once

OPEN_STATUSES = ("submitting", "in_progress", "canceling", "ended")


def release_duckdb() -> None:
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager as manager

    with manager._LOCK:
        env, manager._ENV = manager._ENV, None
    if env is not None:
        try:
            env.close()
        except Exception:
            pass


class RobustProject(DbtProject):
    """``DbtProject`` plus what crash, lock and bad-input tests need."""

    def dbt(self, *args: Any, **kwargs: Any):
        """In-process dbt, then let go of the DuckDB file (dbt-duckdb keeps its database open in a
        class attribute between invocations, which would lock subprocess runs out of the file)."""
        try:
            return super().dbt(*args, **kwargs)
        finally:
            release_duckdb()

    def cli_env(self, env: dict | None = None) -> dict:
        return {**os.environ, **self.env, **(env or {})}

    def dbt_cli(self, command: str = "run", *, select: str | None = "review_sentiment", vars: dict | None = None,
                extra: list[str] | None = None, timeout: float = 300, env: dict | None = None
                ) -> subprocess.CompletedProcess:
        """dbt in a subprocess, with extra environment variables (e.g. CLAUDE_BATCH_CRASH_AT)."""
        return subprocess.run(
            [sys.executable, "-m", "dbt.cli.main", *self._args(command, select, vars, extra or [])],
            env=self.cli_env(env), capture_output=True, text=True, timeout=timeout,
        )

    def dbt_popen(self, command: str = "run", *, select: str | None = "review_sentiment", vars: dict | None = None,
                  env: dict | None = None, log_path: Path | None = None) -> subprocess.Popen:
        """dbt in a subprocess, not waited for (two runs at once). Each gets its own log path."""
        args = self._args(command, select, vars, [])
        if log_path is not None:
            args[args.index("--log-path") + 1] = str(log_path)
        return subprocess.Popen(
            [sys.executable, "-m", "dbt.cli.main", *args], env=self.cli_env(env),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    # ---------------------------------------------------------------- warehouse helpers
    def exists(self, relation: str) -> bool:
        if not self.db.exists():
            return False
        schema, _, name = relation.partition(".")
        return bool(self.sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name])[0][0])

    def rows(self, model: str, key: str | tuple[str, ...]) -> dict[Any, dict]:
        """The model's table keyed by its key column(s)."""
        keys = (key,) if isinstance(key, str) else key
        out = {}
        for r in self.dicts(f'SELECT * FROM main."{model}"'):
            k = r[keys[0]] if len(keys) == 1 else tuple(r[c] for c in keys)
            out[k] = r
        return out

    def open_work(self, model: str = "review_sentiment") -> int:
        """Submissions not yet collected plus rows not yet final in the model's table."""
        if not self.exists("claude_batch.cb_batches"):
            return 1
        subs = self.sql(
            f"SELECT count(*) FROM claude_batch.cb_batches WHERE status IN {OPEN_STATUSES}")[0][0]
        rows = self.sql(
            f"SELECT count(*) FROM main.\"{model}\" WHERE status IN ('in_flight', 'pending')")[0][0] \
            if self.exists(f"main.{model}") else 1
        return subs + rows

    def settle(self, *, select: str = "review_sentiment", vars: dict | None = None, max_runs: int = 8) -> int:
        """Normal in-process runs until nothing is in flight; returns how many it took."""
        for n in range(1, max_runs + 1):
            self.dbt("run", select=select, vars=vars)
            if self.open_work(select) == 0:
                return n
        raise AssertionError(f"still work in flight after {max_runs} runs: "
                             f"{self.dicts('SELECT submission_key, batch_id, status, error FROM claude_batch.cb_batches')}")

    def create_table(self, relation: str, columns: dict[str, str], rows: list[tuple]) -> None:
        """CREATE TABLE with any column names (quoted here), then insert rows."""
        schema, _, name = relation.partition(".")
        q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
        con = duckdb.connect(str(self.db))
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
            cols = ", ".join(f"{q(c)} {t}" for c, t in columns.items())
            con.execute(f"CREATE TABLE {q(schema)}.{q(name)} ({cols})")
            if rows:
                marks = ", ".join("?" for _ in columns)
                con.executemany(f"INSERT INTO {q(schema)}.{q(name)} VALUES ({marks})", rows)
        finally:
            con.close()

    def rb_vars(self, spec: dict, table: str = "rows", **more: Any) -> dict:
        """Vars enabling the var-driven model integration_tests/models/robustness/rb_classify.py."""
        return {"rb_enabled": True, "rb_table": table, "rb_spec": spec, **more}


CUSTOM_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def batch_entries(emulator) -> list[dict]:
    """The emulator's own record of batch requests (not /v1/messages calls)."""
    return [e for e in emulator.received() if e.get("batch") not in (None, "messages")]


def sent_rows(emulator) -> Counter:
    """Every row text the emulator received in a batch, counted: a count of 2 means paid twice."""
    counts: Counter = Counter()
    for entry in batch_entries(emulator):
        counts.update(entry["rows"])
    return counts


def twice(emulator) -> dict:
    return {text: n for text, n in sent_rows(emulator).items() if n > 1}


def failure_text(result) -> str:
    """Everything a failed in-process dbt invocation said about its failure."""
    parts = [str(result.exception or "")]
    try:
        parts += [str(r.message) for r in result.result]
    except Exception:
        pass
    return "\n".join(parts)


def files_under(*roots: Path):
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
        elif root.exists():
            for path in root.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    yield path
