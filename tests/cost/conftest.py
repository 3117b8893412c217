"""Fixtures of the cost suite (issue 4): ``project`` (real dbt builds of integration_tests/ through
the integration harness) and ``runs`` (pipeline.run on a DuckDB file); both against the ``emulator``
fixture. Helpers live in cost_helpers.py (a plain module, so test modules can import them whatever
pytest's import mode).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from cost_helpers import DbtProject, Runs, dbt_deps  # noqa: E402,F401  (dbt_deps: session fixture)


@pytest.fixture
def project(tmp_path, emulator, dbt_deps) -> DbtProject:
    return DbtProject(tmp_path, emulator.base_url)


@pytest.fixture
def runs(tmp_path, emulator) -> Runs:
    return Runs(tmp_path / "warehouse.duckdb", emulator)
