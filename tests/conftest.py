"""Suite-wide setup.

- The emulator's pytest fixtures (``emulator``, ``emulator_factory``) are an opt-in plugin, enabled
  here the way docs/emulator.md tells users to.
- ``bench/`` holds the benchmark workloads (``import workloads``): tests that share them find it here.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

PLUGIN = "claude_batch.emulator.pytest_plugin"
# An environment installed before the plugin became opt-in still registers it through a stale
# pytest11 entry point (until `make setup` reinstalls the package); naming it again would fail.
_STALE = any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _STALE else [PLUGIN]
