"""The package's one log: dbt's log inside a dbt run, the ``claude_batch`` Python logger otherwise.

Every module logs through :func:`info` and :func:`warn` (never its own ``logging.getLogger``), so a
warning reaches dbt's console and ``logs/dbt.log`` when a model runs. One sink per line: both at once
printed every warning twice in a dbt run (dbt's tracking library configures the root logger to print
to stderr).

Inside a dbt run means: this thread is running a dbt node (dbt sets the node in its log context), or
dbt set up its event logging and this is a helper thread of ours or of DuckDB's (a real-time loop,
a UDF call), which carries no node context. Anywhere else (a script, a benchmark, a notebook) lines
go to ``logging.getLogger("claude_batch")``, configured as the caller likes.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

logger = logging.getLogger("claude_batch")

try:  # dbt is a dependency, but keep the library usable without it
    from dbt.adapters.events.logging import AdapterLogger
    from dbt_common.events import get_event_manager
    from dbt_common.events.contextvars import get_node_info

    _dbt = AdapterLogger("claude_batch")
except Exception:  # pragma: no cover
    _dbt = None


def in_dbt() -> bool:
    """Whether a line logged now belongs in dbt's log (see the module doc)."""
    if _dbt is None:
        return False
    if get_node_info():
        return True
    # dbt's setup_event_logger always registers callbacks; the fallback manager it starts with has none.
    return bool(get_event_manager().callbacks) and threading.current_thread() is not threading.main_thread()


def info(message: str) -> None:
    if in_dbt():
        _dbt.info(f"claude_batch: {message}")
    else:
        logger.info(message)


def warn(message: str) -> None:
    if in_dbt():
        _dbt.warning(f"claude_batch: {message}")
    else:
        logger.warning(message)


def bound() -> tuple[Callable[[str], None], Callable[[str], None]]:
    """``(info, warn)`` fixed to the sink of this thread now, for lines another thread logs on its behalf."""
    if in_dbt():
        return (lambda m: _dbt.info(f"claude_batch: {m}")), (lambda m: _dbt.warning(f"claude_batch: {m}"))
    return logger.info, logger.warning
