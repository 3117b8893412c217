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
from typing import NamedTuple

from .. import catalog
from .clock import Clock
from .usage import RequestTokens

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


class Breakpoint(NamedTuple):
    """A cacheable prefix: its tokens, a digest of its exact content, its TTL."""

    tokens: int
    digest: bytes
    ttl: str


def prefix_breakpoints(counted: RequestTokens) -> list[Breakpoint]:
    """Every breakpoint of a request, in prefix order (one pass over its parts)."""
    marked = [i for i, p in enumerate(counted.parts) if p.ttl is not None]
    if not marked:
        return []
    hasher = hashlib.sha256()
    result = []
    running = 0
    wanted = set(marked)
    for index, part in enumerate(counted.parts[: marked[-1] + 1]):
        running += part.tokens
        hasher.update(part.identity.encode("utf-8", "surrogatepass"))
        hasher.update(b"\x00")
        if index in wanted:
            result.append(Breakpoint(running, hasher.copy().digest(), part.ttl or "5m"))
    return result


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

    def account(self, key_id: str, model: str, breakpoints: list[Breakpoint]) -> CacheUsage:
        """Cache read/write tokens of one request, updating the cache."""
        if not breakpoints:
            return CacheUsage()
        info = catalog.model_info(model)
        namespace = f"{key_id}\x00{info.name}\x00".encode()
        # Plain tuples (tokens, digest, ttl) are accepted too: that is how helper processes send them.
        eligible = [
            (hashlib.sha256(namespace + digest).digest(), tokens, ttl)
            for tokens, digest, ttl in breakpoints
            if tokens >= info.min_cacheable_tokens
        ]
        if not eligible:
            return CacheUsage()

        now = self._clock.now()
        usage = CacheUsage()
        with self._lock:
            if len(self._entries) > 100_000:
                self._prune(now)
            hit = -1
            for position in range(len(eligible) - 1, -1, -1):
                entry = self._entries.get(eligible[position][0])
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
