"""Helpers shared by the robustness suites (imported by the test modules)."""

from __future__ import annotations

import importlib.util
import json
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
    """``DbtProject`` plus what crash, lock and bad-input tests need.

    Speed: a full dbt parse costs seconds on this machine and happens on every new target dir and
    every change of ``--vars``. Every project here names its DuckDB file by a relative path
    (``warehouse.duckdb``, dbt runs with the project dir as working directory), so the profile, and
    with it dbt's partial-parse state check, is the same for all of them, and a partial-parse file
    saved per set of vars can be reused across tests. In-process runs skip writing manifest and
    run-results JSON unless ``write_json=True``.
    """

    _parse_cache: dict[str, bytes] = {}

    def __init__(self, tmp_path: Path, base_url: str):
        super().__init__(tmp_path, base_url)
        self.env["CLAUDE_BATCH_DUCKDB"] = self.db.name  # relative to the working directory: self.tmp

    # ---------------------------------------------------------------- parse cache
    @staticmethod
    def _vars_key(vars: dict | None) -> str:
        return json.dumps(vars or {}, sort_keys=True)

    def _seed_parse(self, vars: dict | None, target: Path | None = None) -> None:
        cached = self._parse_cache.get(self._vars_key(vars))
        if cached is not None:
            target = target or self.target
            target.mkdir(parents=True, exist_ok=True)
            (target / "partial_parse.msgpack").write_bytes(cached)

    def _save_parse(self, vars: dict | None, target: Path | None = None) -> None:
        path = (target or self.target) / "partial_parse.msgpack"
        if path.exists():
            self._parse_cache[self._vars_key(vars)] = path.read_bytes()

    # ---------------------------------------------------------------- dbt
    def _args(self, command: str, select: str | None, vars: dict | None, extra: list[str]) -> list[str]:
        args = super()._args(command, select, None, extra)
        if vars:  # as UTF-8 text: dbt reads --vars as YAML, which rejects JSON's surrogate-pair escapes
            args[args.index(command) + 1:args.index(command) + 1] = ["--vars", json.dumps(vars, ensure_ascii=False)]
        return args

    def dbt(self, command: str = "build", *, select: str | None = "review_sentiment", vars: dict | None = None,
            extra: list[str] | None = None, expect_ok: bool = True, write_json: bool = False):
        """In-process dbt (cwd = the project dir), then let go of the DuckDB file: dbt-duckdb keeps its
        database open in a class attribute between invocations, which would lock subprocess runs out."""
        extra = list(extra or []) + ([] if write_json else ["--no-write-json"])
        self._seed_parse(vars)
        old = os.getcwd()
        os.chdir(self.tmp)
        try:
            return super().dbt(command, select=select, vars=vars, extra=extra, expect_ok=expect_ok)
        finally:
            os.chdir(old)
            release_duckdb()
            self._save_parse(vars)

    def cli_env(self, env: dict | None = None) -> dict:
        return {**os.environ, **self.env, **(env or {})}

    def dbt_cli(self, command: str = "run", *, select: str | None = "review_sentiment", vars: dict | None = None,
                extra: list[str] | None = None, timeout: float = 300, env: dict | None = None
                ) -> subprocess.CompletedProcess:
        """dbt in a subprocess, with extra environment variables (e.g. CLAUDE_BATCH_CRASH_AT)."""
        self._seed_parse(vars)
        try:
            return subprocess.run(
                [sys.executable, "-m", "dbt.cli.main", *self._args(command, select, vars, extra or [])],
                env=self.cli_env(env), capture_output=True, text=True, timeout=timeout, cwd=self.tmp,
            )
        finally:
            self._save_parse(vars)

    def dbt_popen(self, command: str = "run", *, select: str | None = "review_sentiment", vars: dict | None = None,
                  env: dict | None = None, name: str = "cli") -> subprocess.Popen:
        """dbt in a subprocess, not waited for (two runs at once): own log and target dirs."""
        args = self._args(command, select, vars, [])
        target = self.tmp / f"target-{name}"
        args[args.index("--log-path") + 1] = str(self.tmp / f"logs-{name}")
        args[args.index("--target-path") + 1] = str(target)
        self._seed_parse(vars, target)
        return subprocess.Popen(
            [sys.executable, "-m", "dbt.cli.main", *args], env=self.cli_env(env), cwd=self.tmp,
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
            f"SELECT count(*) FROM main.\"{model}\" WHERE status IN ('in_flight', 'pending', 'reclassifying')")[0][0] \
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
