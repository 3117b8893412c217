"""The emulator's own record of every request it received (append-only JSONL in the state dir).

One line per batch request (at create time) and per ``/v1/messages`` call:
``{"batch": "<batch id>" | "messages", "custom_id": str | null, "model": str | null,
"rows": [row texts as parsed by prompts.parse_rows], "settings": {max_tokens, thinking, effort,
sampling parameters, tool_choice: those sent}, "at": RFC 3339}``. Crash tests use it to
count rows that were submitted twice. It never holds API keys.

A batch create only appends one placeholder line (``{"batch", "at", "deferred"}``) and keeps its
``requests.jsonl`` under ``received-pending/`` (a hard link, so no copy); the placeholder is expanded
into one entry per request the next time the log is read. Parsing the rows of every request costs
more than the rest of a create call together, and nothing reads this log while a create is waiting.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

from .. import prompts
from .responder import user_text


def record(batch: str, custom_id: str | None, params: Any, at: str) -> dict:
    """The received-log entry for one request (tolerates malformed params)."""
    model = None
    rows: list[str] = []
    settings: dict = {}
    if isinstance(params, dict):
        model = params.get("model") if isinstance(params.get("model"), str) else None
        try:
            rows = [text for _, text in prompts.parse_rows(user_text(params))]
        except (TypeError, AttributeError, ValueError):
            rows = []
        # The settings a test may need to see were sent (thinking, effort, sampling), not the prompt.
        settings = {k: params[k] for k in SETTINGS if k in params}
        effort = params.get("output_config", {}).get("effort") if isinstance(params.get("output_config"), dict) else None
        if effort is not None:
            settings["effort"] = effort
    return {"batch": batch, "custom_id": custom_id, "model": model, "rows": rows, "settings": settings, "at": at}


SETTINGS = ("max_tokens", "thinking", "temperature", "top_p", "top_k", "tool_choice")


class ReceivedLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending_dir = path.with_name("received-pending")
        self._lock = threading.Lock()
        path.touch(exist_ok=True)
        # A placeholder left by an earlier run is expanded at the first read, like any other.
        self._pending = self.pending_dir.is_dir() and any(self.pending_dir.iterdir())

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line)

    def append_batch(self, batch: str, requests: Path, at: str) -> None:
        """Record every request of a batch from its ``requests.jsonl`` (one line per request).

        Cheap: links the file and appends a placeholder, expanded at the next read (module doc).
        """
        with self._lock:
            self.pending_dir.mkdir(exist_ok=True)
            source = self.pending_dir / f"{batch}.jsonl"
            try:
                os.link(requests, source)
            except OSError:  # no hard links on this file system
                shutil.copyfile(requests, source)
            line = json.dumps({"batch": batch, "at": at, "deferred": source.name}) + "\n"
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line)
            self._pending = True

    def materialize(self) -> int:
        """Expand batch placeholders into their entries (the log is rewritten once, then plain).

        Returns the log's size then: its first that many bytes hold no placeholder, even if a
        create appends one right after (readers stop there, see ``__iter__``).
        """
        with self._lock:
            if self._pending:
                self._expand()
            return self.path.stat().st_size

    def _expand(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(self.path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as out:
            for line in src:
                entry = json.loads(line) if '"deferred"' in line else None
                if entry is None or "deferred" not in entry:
                    out.write(line)
                    continue
                for item in self._requests(entry["deferred"]):
                    expanded = record(entry["batch"], item.get("custom_id"), item.get("params"), entry["at"])
                    out.write(json.dumps(expanded, ensure_ascii=False))
                    out.write("\n")
        os.replace(tmp, self.path)
        # No placeholder is left in the log, so no source is needed (nor a crash's leftovers).
        shutil.rmtree(self.pending_dir, ignore_errors=True)
        self._pending = False

    def _requests(self, name: str) -> Iterator[dict]:
        try:
            src = open(self.pending_dir / name, encoding="utf-8")
        except FileNotFoundError:
            return
        with src:
            for line in src:
                if line.strip():
                    yield json.loads(line)

    def __iter__(self) -> Iterator[dict]:
        size = self.materialize()
        read = 0
        with open(self.path, "rb") as src:
            for line in src:
                read += len(line)
                if read > size:
                    break
                if line.strip():
                    yield json.loads(line)
