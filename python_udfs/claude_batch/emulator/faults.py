"""Faults and rate limits on demand.

One JSON object configures them; ``POST /_emulator/faults`` (or ``Emulator.set_faults``, the
``--faults`` CLI option, the ``CLAUDE_BATCH_EMULATOR_FAULTS`` environment variable) replaces the
whole configuration. Every key is optional; unknown keys are rejected so a typo cannot silently
disable a fault.

HTTP-level faults (apply to ``/v1/...`` calls only, never to ``/_emulator/...``):

- ``http_errors``: list of ``{"status": 429|500|529|..., "count": N, "path_prefix": "/v1/messages/batches",
  "method": "POST", "retry_after": seconds}``. The next ``count`` calls whose path starts with
  ``path_prefix`` (default: any) and whose method matches (default: any) fail with that status and
  the API's error JSON (429 rate_limit_error, 500 api_error, 529 overloaded_error). ``retry_after``
  (seconds, may be fractional) is sent as the ``retry-after`` header.
- ``latency_seconds``: sleep this long (real time) before answering every call.
- ``drop_connections``: the next N calls are read, then the socket is closed without an answer.
- ``cut_results``: the next N results downloads send their headers and half the body, then close.

Batch faults (snapshotted into each batch when it is created):

- ``errored_fraction``, ``expired_fraction``, ``canceled_fraction``: that fraction of requests come
  back ``errored`` (retryable ``api_error`` or ``overloaded_error``), ``expired`` or ``canceled``.
  Which requests is decided by a hash of (``seed``, the batch's sequence number, ``custom_id``):
  deterministic for a given sequence of batches, and a request resubmitted in a later batch gets a
  fresh draw, so a retry loop converges.
- ``seed``: integer mixed into that hash (default 0).
- ``never_finish``: new batches stay ``in_progress`` until they expire (24 h on the virtual clock);
  then every request comes back ``expired``.
- ``processing_seconds``: processing time of new batches (overrides the server setting).
- ``answer_errors``: the error model (errormodel.py): labels wrong on purpose, at seeded rates per
  model, growing with pack size and position, with label confusions and unsure answers. Off when
  absent. ``/v1/messages`` uses it live.

Rate limits (windows of 60 s on the virtual clock; ``null`` or absent means unlimited):

- ``messages_rpm``: ``POST /v1/messages`` calls per minute.
- ``messages_itpm``: input tokens per minute on ``/v1/messages`` (uncached input + cache writes).
- ``messages_otpm``: output tokens per minute on ``/v1/messages``.
- ``batch_rpm``: one requests-per-minute limit across all batch endpoints.
- ``queue_cap``: most requests allowed in batches not yet ended; a create beyond it gets 429.

Every 429 carries a ``retry-after`` header in seconds.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from typing import Any

from ..errors import ConfigError

_HTTP_ERROR_KEYS = {"status", "count", "path_prefix", "method", "retry_after"}
_FRACTIONS = ("errored_fraction", "expired_fraction", "canceled_fraction")
_RATE_KEYS = ("messages_rpm", "messages_itpm", "messages_otpm", "batch_rpm", "queue_cap")
_KNOWN = {
    "http_errors",
    "latency_seconds",
    "drop_connections",
    "cut_results",
    *_FRACTIONS,
    "seed",
    "never_finish",
    "processing_seconds",
    "answer_errors",
    *_RATE_KEYS,
}

# Keys copied into a batch at creation: they decide its outcome for its whole life.
BATCH_KEYS = (*_FRACTIONS, "seed", "never_finish", "answer_errors")


def _number(config: dict, key: str, *, minimum: float = 0.0, maximum: float | None = None) -> None:
    value = config.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{key}: {value!r} out of range")


def _integer(config: dict, key: str, *, minimum: int = 0) -> None:
    value = config.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}: {value!r} must be at least {minimum}")


def validate(config: Any) -> dict:
    """A checked deep copy of a fault configuration; raises ValueError naming the bad key."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError("fault configuration must be a JSON object")
    unknown = set(config) - _KNOWN
    if unknown:
        raise ConfigError(f"unknown fault keys: {', '.join(sorted(unknown))}")
    config = copy.deepcopy(config)
    errors = config.get("http_errors") or []
    if not isinstance(errors, list):
        raise ConfigError("http_errors: expected a list")
    for i, entry in enumerate(errors):
        if not isinstance(entry, dict):
            raise ConfigError(f"http_errors.{i}: expected an object")
        extra = set(entry) - _HTTP_ERROR_KEYS
        if extra:
            raise ConfigError(f"http_errors.{i}: unknown keys {sorted(extra)}")
        status = entry.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ConfigError(f"http_errors.{i}.status: expected an HTTP error status, got {status!r}")
        entry.setdefault("count", 1)
        _integer(entry, "count")
        _number(entry, "retry_after")
        for key in ("path_prefix", "method"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise ConfigError(f"http_errors.{i}.{key}: expected a string")
    config["http_errors"] = errors
    _number(config, "latency_seconds")
    _integer(config, "drop_connections")
    _integer(config, "cut_results")
    for key in _FRACTIONS:
        _number(config, key, maximum=1.0)
    if sum(float(config.get(k) or 0) for k in _FRACTIONS) > 1.0:
        raise ConfigError("errored_fraction + expired_fraction + canceled_fraction must not exceed 1")
    _integer(config, "seed", minimum=-(2**63))
    if config.get("never_finish") is not None and not isinstance(config["never_finish"], bool):
        raise ConfigError("never_finish: expected true or false")
    _number(config, "processing_seconds")
    if config.get("answer_errors") is not None:
        from .errormodel import validate as validate_errors  # here: errormodel imports this module

        config["answer_errors"] = validate_errors(config["answer_errors"])
    for key in _RATE_KEYS:
        _integer(config, key, minimum=1)
    return config


class Faults:
    """The live configuration plus its consumable counters (thread-safe)."""

    def __init__(self, config: dict | None = None) -> None:
        self._lock = threading.Lock()
        self._config: dict = validate(config)

    def set(self, config: dict | None) -> None:
        checked = validate(config)
        with self._lock:
            self._config = checked

    def snapshot(self) -> dict:
        """Current configuration, with counters showing what is left."""
        with self._lock:
            return copy.deepcopy(self._config)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            value = self._config.get(key)
        return default if value is None else value

    def batch_snapshot(self) -> dict:
        with self._lock:
            return {k: self._config[k] for k in BATCH_KEYS if self._config.get(k) is not None}

    # --- consumable faults: each call that matches uses one up

    def take_drop(self) -> bool:
        with self._lock:
            left = int(self._config.get("drop_connections") or 0)
            if left <= 0:
                return False
            self._config["drop_connections"] = left - 1
            return True

    def take_cut(self) -> bool:
        with self._lock:
            left = int(self._config.get("cut_results") or 0)
            if left <= 0:
                return False
            self._config["cut_results"] = left - 1
            return True

    def take_http_error(self, method: str, path: str) -> dict | None:
        with self._lock:
            for entry in self._config.get("http_errors") or ():
                if entry.get("count", 0) <= 0:
                    continue
                if entry.get("path_prefix") and not path.startswith(entry["path_prefix"]):
                    continue
                if entry.get("method") and entry["method"].upper() != method.upper():
                    continue
                entry["count"] -= 1
                return dict(entry)
        return None


def unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_outcome(batch_faults: dict, batch_seq: int, custom_id: str) -> str | None:
    """``errored`` / ``expired`` / ``canceled`` for a request chosen by the fractions, else None."""
    errored = float(batch_faults.get("errored_fraction") or 0)
    expired = float(batch_faults.get("expired_fraction") or 0)
    canceled = float(batch_faults.get("canceled_fraction") or 0)
    if not (errored or expired or canceled):
        return None
    u = unit_hash(batch_faults.get("seed") or 0, batch_seq, custom_id)
    if u < errored:
        return "errored"
    if u < errored + expired:
        return "expired"
    if u < errored + expired + canceled:
        return "canceled"
    return None
