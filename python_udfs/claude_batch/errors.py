"""The one error base class a user can catch: every error this package raises on purpose is a
``ClaudeBatchError`` (configuration, API disagreement, state, locks)."""

from __future__ import annotations


class ClaudeBatchError(Exception):
    """Base of every error claude_batch raises on purpose; the message says what to do."""


class ConfigError(ClaudeBatchError, ValueError):
    """A setting is missing or wrong; the message names it."""


class ApiContractError(ClaudeBatchError):
    """The API disagreed with what we believe about it (a rejected request, a whole batch refused):
    the run stops at once with the API's own message rather than pay for, or wait on, more of it."""
