"""Real dbt runs of the integration_tests project (which installs this package with `- local: ../`)
against a real DuckDB file and the emulator over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt.cli.main import dbtRunner

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "integration_tests"
API_KEY = "sk-emulator-integration-marker-3f9c"


@pytest.fixture(scope="session")
def dbt_deps() -> None:
    """`dbt deps` once per session: installs this repo into integration_tests/dbt_packages."""
    env = {**os.environ, "CLAUDE_BATCH_DUCKDB": ":memory:", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    subprocess.run(
        [sys.executable, "-m", "dbt.cli.main", "deps", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)],
        check=True, env=env, capture_output=True,
    )


class DbtProject:
    def __init__(self, tmp_path: Path, base_url: str):
        self.tmp = tmp_path
        self.db = tmp_path / "warehouse.duckdb"
        self.target = tmp_path / "target"
        self.logs = tmp_path / "logs"
        self.project_dir = PROJECT  # a test may point it at a copy of the project
        self.env = {
            "CLAUDE_BATCH_DUCKDB": str(self.db),
            "DBT_TARGET_PATH": str(self.target),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": API_KEY,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }

    # ---------------------------------------------------------------- warehouse
    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.db))
        try:
            cur = con.execute(query, params or [])
            return cur.fetchall() if cur.description else []
        finally:
            con.close()

    def dicts(self, query: str) -> list[dict]:
        con = duckdb.connect(str(self.db))
        try:
            cur = con.execute(query)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            con.close()

    def add_reviews(self, rows: list[tuple[int, str | None]]) -> None:
        con = duckdb.connect(str(self.db))
        try:
            con.execute("CREATE SCHEMA IF NOT EXISTS app")
            con.execute("CREATE TABLE IF NOT EXISTS app.reviews (id INTEGER, body VARCHAR)")
            con.executemany("INSERT INTO app.reviews VALUES (?, ?)", rows)
        finally:
            con.close()

    def write_table(self, table: str, columns: str, rows: list[tuple]) -> None:
        """Replace ``app.<table>`` (``columns``: its DDL) with ``rows``."""
        con = duckdb.connect(str(self.db))
        try:
            con.execute("CREATE SCHEMA IF NOT EXISTS app")
            con.execute(f"CREATE OR REPLACE TABLE app.{table} ({columns})")
            con.executemany(f"INSERT INTO app.{table} VALUES ({', '.join('?' * len(columns.split(',')))})", rows)
        finally:
            con.close()

    def add_tickets(self, rows: list[tuple[str, int, str, str]]) -> None:
        con = duckdb.connect(str(self.db))
        try:
            con.execute("CREATE SCHEMA IF NOT EXISTS app")
            con.execute('CREATE TABLE IF NOT EXISTS app.tickets (region VARCHAR, "ticket no" INTEGER, subject VARCHAR, body VARCHAR)')
            con.executemany("INSERT INTO app.tickets VALUES (?, ?, ?, ?)", rows)
        finally:
            con.close()

    def logged(self, run) -> str:
        """What one in-process dbt invocation (``run``) added to the project's dbt.log."""
        path = self.logs / "dbt.log"
        before = path.stat().st_size if path.exists() else 0
        run()
        with open(path, encoding="utf-8") as fh:
            fh.seek(before)
            return fh.read()

    def table(self, name: str = "review_sentiment", order: str = "id") -> dict[Any, dict]:
        rows = self.dicts(f"SELECT * FROM main.{name} ORDER BY {order}")
        return {r["id"]: r for r in rows} if name == "review_sentiment" else {
            (r["region"], r["ticket no"]): r for r in rows}

    # ---------------------------------------------------------------- dbt
    def _args(self, command: str, select: str | None, vars: dict | None, extra: list[str]) -> list[str]:
        args = [command, "--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
                "--log-path", str(self.logs), "--target-path", str(self.target)]
        if select:
            args += ["--select", select]
        if vars:
            args += ["--vars", json.dumps(vars)]
        return args + extra

    def dbt(self, command: str = "build", *, select: str | None = "review_sentiment", vars: dict | None = None,
            extra: list[str] | None = None, expect_ok: bool = True):
        old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            result = dbtRunner().invoke(self._args(command, select, vars, extra or []))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if expect_ok:
            assert result.success, f"dbt {command} failed: {result.exception or _failures(result)}"
        return result

    def dbt_cli(self, command: str = "build", *, select: str | None = "review_sentiment", vars: dict | None = None,
                extra: list[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """dbt in a subprocess (for crash and lock tests)."""
        env = {**os.environ, **self.env}
        return subprocess.run(
            [sys.executable, "-m", "dbt.cli.main", *self._args(command, select, vars, extra or [])],
            env=env, capture_output=True, text=True, timeout=timeout,
        )


def _failures(result) -> str:
    try:
        return "; ".join(f"{r.node.name}: {r.status} {r.message}" for r in result.result if str(r.status) not in ("success", "pass"))
    except Exception:
        return str(result.result)


@pytest.fixture
def project(tmp_path, emulator, dbt_deps) -> DbtProject:
    return DbtProject(tmp_path, emulator.base_url)


@pytest.fixture
def reviews_db(tmp_path, emulator):
    """``reviews_db(rows, extra=())``: an open DuckDB file whose app.reviews(id, body) holds ``rows``
    ((id, body, label): the emulator is scripted to answer each body with its label, its "truth") and
    ``extra`` ((id, body), e.g. rows that repeat a text). Closed after the test."""
    opened: list = []

    def make(rows: list[tuple[int, str, str]], extra: list[tuple[int, str]] = ()) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(tmp_path / "w.duckdb"))
        con.execute("CREATE SCHEMA app; CREATE TABLE app.reviews (id INTEGER, body VARCHAR)")
        con.executemany("INSERT INTO app.reviews VALUES (?, ?)", [(i, t) for i, t, _ in rows] + list(extra))
        emulator.script({t: g for _, t, g in rows})
        opened.append(con)
        return con

    yield make
    for con in opened:
        con.close()
