"""Virtual clock: real time plus an offset that tests move forward (persisted in the state dir).

Everything time-based in the emulator (batch lifecycle, expiry, archiving, cache TTLs, rate-limit
windows) reads this clock, so a test can jump 25 hours or 30 days without waiting. The offset is
saved to ``clock.json`` so a restarted emulator keeps the same notion of "now".
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path


class Clock:
    """``now()`` = ``time.time()`` + offset, in epoch seconds."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._offset = 0.0
        if path is not None and path.exists():
            try:
                self._offset = float(json.loads(path.read_text())["offset_seconds"])
            except (ValueError, KeyError, TypeError):
                # A corrupt clock file must not stop the server; real time is a safe default.
                self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock by ``seconds`` (may be negative); returns the new now()."""
        with self._lock:
            self._offset += float(seconds)
            self._save()
        return self.now()

    def set(self, when: datetime | str | float) -> float:
        """Jump to an absolute time (datetime, RFC 3339 string or epoch seconds)."""
        target = to_epoch(when)
        with self._lock:
            self._offset = target - time.time()
            self._save()
        return self.now()

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"offset_seconds": self._offset}))
        os.replace(tmp, self._path)


def to_epoch(when: datetime | str | float | int) -> float:
    if isinstance(when, (int, float)):
        return float(when)
    if isinstance(when, str):
        when = parse_rfc3339(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def parse_rfc3339(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def rfc3339(epoch: float | None) -> str | None:
    """The API's timestamp format, e.g. ``2024-08-20T18:37:24.100435Z``."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
