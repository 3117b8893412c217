"""Fixtures of the robustness suites (issue 6, "loses nothing, pays once").

They reuse the integration harness (tests/integration/conftest.py: ``DbtProject``, ``dbt_deps``)
through robust_helpers.py, which loads it by file path (so this works whatever pytest's import mode
and sys.path), and adds what the suites need on top: ``dbt_cli`` with extra environment variables
(crash points), a non-blocking ``dbt_popen`` (two runs at once), ``settle`` (run until nothing is in
flight) and table helpers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # robust_helpers.py, whatever the import mode
    sys.path.insert(0, str(HERE))

from robust_helpers import RobustProject, dbt_deps  # noqa: E402,F401  (dbt_deps: session fixture)


@pytest.fixture
def project(tmp_path, emulator, dbt_deps) -> RobustProject:
    return RobustProject(tmp_path, emulator.base_url)


@pytest.fixture
def make_project(tmp_path, dbt_deps):
    """``make_project(emulator, name)``: another project dir (own DuckDB file) on a given emulator."""

    def make(emulator, name: str) -> RobustProject:
        path = tmp_path / name
        path.mkdir(parents=True, exist_ok=True)
        return RobustProject(path, emulator.base_url)

    return make
