"""A run's temp files, named after the process that owns them, so that a later run can remove the ones
a killed process left behind, and never another live run's.

``kill -9`` runs no cleanup. A run killed while submitting leaves its rendered request bodies
(``$TMPDIR/claude_batch_bodies-*``), one killed while collecting its downloaded results
(``claude_batch_results-*``), and dbt-duckdb leaves the model's compiled code (``$TMPDIR/tmp*.py``: it
writes the file with ``delete=False`` and unlinks it in a ``finally``). Our folders carry a hash of the
host name and the PID in their name; the dbt-duckdb file of a classifier model is listed, with its inode
and modification time, in a marker file of the process (``claude_batch_owned-<host>-<pid>.json``).

``sweep()`` (at the start of every classifier run) removes what belongs to processes that are dead on
this host. A live process's files are never touched; a PID reused by a live process keeps the dead one's
files until that process is gone too (safe, not eager). Files from releases before this naming, and
dbt-duckdb files of models that are not classifiers, are left alone: nothing says whose they are.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path

PREFIX = "claude_batch_"
_NAME_RE = re.compile(r"^claude_batch_(bodies|results|owned)-([0-9a-f]{8})-(\d+)(-.+|\.json|\.tmp)$")  # .tmp: a marker being rewritten
_DBT_DUCKDB_FILE_RE = re.compile(r"^tmp[A-Za-z0-9_]+\.py$")  # tempfile.NamedTemporaryFile(suffix=".py")
_LOCK = threading.Lock()  # dbt runs models in threads: one writer of this process's marker at a time
_AT_EXIT: list[Path] = []


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_dir(kind: str, *, dir: str | None = None) -> tempfile.TemporaryDirectory:
    """A temp folder whose name says which process on which host owns it."""
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{kind}-{_host()}-{os.getpid()}-", dir=dir)


def _marker(directory: Path) -> Path:
    return directory / f"{PREFIX}owned-{_host()}-{os.getpid()}.json"


def _read(marker: Path) -> list[dict]:
    try:
        return list(json.loads(marker.read_text()))
    except (OSError, ValueError):
        return []


def _same_file(entry: dict) -> bool:
    try:
        st = os.stat(entry["path"])
    except (OSError, KeyError):
        return False
    return st.st_ino == entry.get("ino") and st.st_mtime_ns == entry.get("mtime_ns")


def own_file(path: str | os.PathLike | None) -> None:
    """List dbt-duckdb's compiled-model file of this run in this process's marker (only a ``tmp*.py``
    directly in the temp dir: what dbt-duckdb writes), so a run after a kill can remove it."""
    if not path:
        return
    path = Path(path)
    directory = Path(tempfile.gettempdir())
    if path.parent != directory or not _DBT_DUCKDB_FILE_RE.match(path.name):
        return
    try:
        st = path.stat()
        with _LOCK:
            marker = _marker(directory)
            # Entries whose file dbt already removed (models that finished) are dropped as we go.
            entries = [e for e in _read(marker) if _same_file(e) and e["path"] != str(path)]
            entries.append({"path": str(path), "ino": st.st_ino, "mtime_ns": st.st_mtime_ns})
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries))
            os.replace(tmp, marker)
            if not _AT_EXIT:  # a process that exits normally leaves no marker (dbt removed its files)
                _AT_EXIT.append(marker)
                atexit.register(_drop_marker)
    except OSError:
        pass  # bookkeeping for a cleanup: never a reason to fail a run


def _drop_marker() -> None:
    for marker in _AT_EXIT:
        try:
            if not any(_same_file(e) for e in _read(marker)):
                marker.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process (or we cannot tell): not ours to judge
    return True


def sweep(directory: str | os.PathLike | None = None) -> list[str]:
    """Remove the temp files of processes dead on this host; returns what was removed."""
    directory = Path(directory or tempfile.gettempdir())
    removed: list[str] = []
    host = _host()
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _NAME_RE.match(name)
        if not match or match.group(2) != host or _alive(int(match.group(3))):
            continue
        entry = directory / name
        try:
            if match.group(1) == "owned":
                for owned in _read(entry):
                    target = Path(owned.get("path", ""))
                    # The very file the dead process listed (same inode and mtime), not a new one by that name.
                    if target.parent == directory and _DBT_DUCKDB_FILE_RE.match(target.name) and _same_file(owned):
                        target.unlink()
                        removed.append(str(target))
                entry.unlink()
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                continue
            removed.append(str(entry))
        except OSError:
            continue  # another run sweeping at the same time, or permissions: leave it
    return removed
