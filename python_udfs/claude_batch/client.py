"""The one place an Anthropic SDK client is made.

The API key and base URL come only from the environment (``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``), never from dbt vars or config, which dbt writes to ``target/``. The real
API and the emulator take the same code path: only those two variables differ.
"""

from __future__ import annotations

import os
from typing import Any

import anthropic
from .errors import ClaudeBatchError

DEFAULT_MAX_RETRIES = 4  # the SDK retries 408/409/429/5xx and connection errors, honouring retry-after
DEFAULT_TIMEOUT_S = 600.0


class MissingApiKeyError(ClaudeBatchError, RuntimeError):
    pass


def api_version_headers(api_version: str | None) -> dict[str, str] | None:
    """Headers that pin ``anthropic-version`` (None: the SDK's own, 2026-10-21 for SDK 2.x). SDK 2.x
    lets a default header replace its own, matched case-insensitively (SDK MIGRATION.md) [REF §1]."""
    return {"anthropic-version": api_version} if api_version else None


def sent_api_version(client: Any) -> str:
    """The anthropic-version this client sends."""
    # The SDK puts its own version (2026-10-21 for SDK 2.x) in default_headers unless one was given.
    headers = getattr(client, "default_headers", None) or {}
    return str(headers.get("anthropic-version") or "unknown")


def make_client(*, max_retries: int = DEFAULT_MAX_RETRIES, timeout: float = DEFAULT_TIMEOUT_S,
                api_version: str | None = None) -> anthropic.Anthropic:
    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise MissingApiKeyError(
            "ANTHROPIC_API_KEY is not set. Export it in the environment that runs dbt "
            "(never put it in dbt vars or profiles, which dbt writes to target/). "
            "To run offline, start the emulator and set ANTHROPIC_BASE_URL to it."
        )
    return anthropic.Anthropic(max_retries=max_retries, timeout=timeout,
                               default_headers=api_version_headers(api_version))


def make_async_client(
    *, max_retries: int = DEFAULT_MAX_RETRIES, timeout: float = DEFAULT_TIMEOUT_S, api_version: str | None = None
) -> anthropic.AsyncAnthropic:
    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise MissingApiKeyError("ANTHROPIC_API_KEY is not set (see claude_batch.client.make_client)")
    return anthropic.AsyncAnthropic(max_retries=max_retries, timeout=timeout,
                                    default_headers=api_version_headers(api_version))
