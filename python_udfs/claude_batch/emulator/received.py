"""The emulator's own record of every request it received (append-only JSONL in the state dir).

One line per batch request (at create time) and per ``/v1/messages`` call:
``{"batch": "<batch id>" | "messages", "custom_id": str | null, "model": str | null,
"rows": [row texts as parsed by prompts.parse_rows], "at": RFC 3339}``. Crash tests use it to
count rows that were submitted twice. It never holds API keys.
"""

from __future__ import annotations

import json
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
    if isinstance(params, dict):
        model = params.get("model") if isinstance(params.get("model"), str) else None
        try:
            rows = [text for _, text in prompts.parse_rows(user_text(params))]
        except (TypeError, AttributeError, ValueError):
            rows = []
    return {"batch": batch, "custom_id": custom_id, "model": model, "rows": rows, "at": at}


class ReceivedLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.touch(exist_ok=True)

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line)

    def append_file(self, part: Path) -> None:
        """Append a pre-written part (one batch's entries) in one go."""
        with self._lock, open(self.path, "ab") as out, open(part, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)

    def __iter__(self) -> Iterator[dict]:
        with open(self.path, encoding="utf-8") as src:
            for line in src:
                if line.strip():
                    yield json.loads(line)
