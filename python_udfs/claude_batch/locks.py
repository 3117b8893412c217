"""Whether the run holding a classifier's lock is still alive.

A lock is held by an owner ``host:pid:run_id`` (``owner``). A holder that died on this machine (e.g.
killed) holds nothing; any other lock is stale only after ``LOCK_STALE_AFTER_S``.
"""

from __future__ import annotations

import os
import socket

LOCK_STALE_AFTER_S = 3 * 3600


def owner(run_id: str) -> str:
    """This process's lock owner name for a run."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"


def stale_after(holder: str | None) -> float:
    """Seconds after which the lock ``holder`` holds may be taken over (0: its process is gone)."""
    return 0 if holder is not None and owner_is_dead(holder) else LOCK_STALE_AFTER_S


def owner_is_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
