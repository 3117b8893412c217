"""pytest plugin, opt-in: the ``emulator`` fixtures. Enable it with ``pytest -p claude_batch.emulator.pytest_plugin``
or ``pytest_plugins = ["claude_batch.emulator.pytest_plugin"]`` in a conftest.py (docs/emulator.md).

- ``emulator``: a started ``Emulator`` on a free port, state dir under ``tmp_path``, processing
  time 0; stopped after the test.
- ``emulator_factory``: ``emulator_factory(**options)`` starts more emulators (same options as
  ``Emulator``; ``state_dir`` defaults to the test's emulator dir, so a second one started after
  stopping the first sees the same state: restart tests). All are stopped after the test.

Importing this module is cheap: the emulator itself is imported when a fixture is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from claude_batch.emulator import Emulator

    started: list[Emulator] = []
    state_dir = tmp_path / "emulator-state"

    def make(**options: Any) -> Emulator:
        options.setdefault("state_dir", state_dir)
        options.setdefault("processing_seconds", 0.0)
        emulator = Emulator(**options).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., Any]) -> Any:
    """A running emulator for one test (processing time 0, fresh state)."""
    return emulator_factory()
