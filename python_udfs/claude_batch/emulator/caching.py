"""Prompt-cache accounting by the documented rules.

- A ``cache_control`` block (tool, system block, message block, or the top-level ``cache_control``
  that marks the last block) ends a cacheable prefix; prefixes are ordered tools, output format,
  system, messages. At most 4 breakpoints (checked in validation.py); 1 h TTLs before 5 min ones.
- A prefix shorter than the model's minimum (catalog.model_info(model).min_cacheable_tokens) is
  silently not cached: no error, both usage fields 0.
- Entries are keyed by (API key, model, exact prefix content without the cache_control markers),
  live 5 minutes or 1 hour on the virtual clock, and a read refreshes the entry's lifetime.
- On a request, the longest live breakpoint prefix is read; every longer eligible breakpoint is
  written, each segment billed at its breakpoint's TTL: ``cache_creation.ephemeral_5m/1h``.
- input_tokens = total - cache read - cache write.

Caches live in memory only: a restarted emulator starts cold, like a cache that expired.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Iterator

from .. import catalog
from .clock import Clock
from .usage import RequestTokens, request_tokens

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def iter_breakpoints(params: dict) -> Iterator[tuple[int, str]]:
    """(part index, ttl) of every breakpoint, in prefix order."""
    for index, part in enumerate(request_tokens(params).parts):
        if part.ttl is not None:
            yield index, part.ttl


@dataclass
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


@dataclass
class _Entry:
    expires_at: float
    ttl: str


class PromptCache:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[bytes, _Entry] = {}
        self.stats = {"reads": 0, "writes": 0, "read_tokens": 0, "write_tokens": 0}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def account(self, key_id: str, params: dict, counted: RequestTokens | None = None) -> CacheUsage:
        """Cache read/write tokens of one request, updating the cache."""
        counted = counted or request_tokens(params)
        breakpoints = [(i, p.ttl) for i, p in enumerate(counted.parts) if p.ttl is not None]
        if not breakpoints:
            return CacheUsage()
        model = params.get("model")
        minimum = catalog.model_info(model).min_cacheable_tokens
        canonical_model = catalog.model_info(model).name

        # Prefix token sums and identities, computed in one pass.
        hasher = hashlib.sha256(f"{key_id}\x00{canonical_model}\x00".encode())
        wanted = {i: ttl for i, ttl in breakpoints}
        eligible: list[tuple[bytes, int, str]] = []  # (key, prefix tokens, ttl)
        running = 0
        last = breakpoints[-1][0]
        for index, part in enumerate(counted.parts[: last + 1]):
            running += part.tokens
            hasher.update(part.identity.encode("utf-8", "surrogatepass"))
            hasher.update(b"\x00")
            if index in wanted and running >= minimum:
                eligible.append((hasher.copy().digest(), running, wanted[index]))
        if not eligible:
            return CacheUsage()

        now = self._clock.now()
        usage = CacheUsage()
        with self._lock:
            if len(self._entries) > 100_000:
                self._prune(now)
            hit = -1
            for position in range(len(eligible) - 1, -1, -1):
                key, _, _ = eligible[position]
                entry = self._entries.get(key)
                if entry is not None and entry.expires_at > now:
                    hit = position
                    entry.expires_at = now + TTL_SECONDS[entry.ttl]
                    break
            covered = 0
            if hit >= 0:
                covered = usage.read = eligible[hit][1]
                self.stats["reads"] += 1
                self.stats["read_tokens"] += usage.read
            for key, prefix_tokens, ttl in eligible[hit + 1 :]:
                segment = prefix_tokens - covered
                covered = prefix_tokens
                if ttl == "1h":
                    usage.write_1h += segment
                else:
                    usage.write_5m += segment
                self._entries[key] = _Entry(now + TTL_SECONDS[ttl], ttl)
            if usage.write:
                self.stats["writes"] += 1
                self.stats["write_tokens"] += usage.write
        return usage

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]
