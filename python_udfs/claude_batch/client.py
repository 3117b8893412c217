"""The one place an Anthropic SDK client is made.

The API key and base URL come only from the environment (``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``), never from dbt vars or config, which dbt writes to ``target/``. The real
API and the emulator take the same code path: only those two variables differ.
"""

from __future__ import annotations

import os

import anthropic

DEFAULT_MAX_RETRIES = 4  # the SDK retries 408/409/429/5xx and connection errors, honouring retry-after
DEFAULT_TIMEOUT_S = 600.0


class MissingApiKeyError(RuntimeError):
    pass


def make_client(*, max_retries: int = DEFAULT_MAX_RETRIES, timeout: float = DEFAULT_TIMEOUT_S) -> anthropic.Anthropic:
    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise MissingApiKeyError(
            "ANTHROPIC_API_KEY is not set. Export it in the environment that runs dbt "
            "(never put it in dbt vars or profiles, which dbt writes to target/). "
            "To run offline, start the emulator and set ANTHROPIC_BASE_URL to it."
        )
    return anthropic.Anthropic(max_retries=max_retries, timeout=timeout)


def make_async_client(
    *, max_retries: int = DEFAULT_MAX_RETRIES, timeout: float = DEFAULT_TIMEOUT_S
) -> anthropic.AsyncAnthropic:
    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise MissingApiKeyError("ANTHROPIC_API_KEY is not set (see claude_batch.client.make_client)")
    return anthropic.AsyncAnthropic(max_retries=max_retries, timeout=timeout)
