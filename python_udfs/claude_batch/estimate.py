"""Input tokens of a run before it is sent: what the budget guard and the dry run price.

Two sources, chosen by the ``count_tokens_api`` setting (docs/cost.md):

- local (default, nothing leaves the machine): the shared prefix counted exactly with
  ``claude_batch.tokens``, and each request's rows at ``CHARS_PER_TOKEN`` characters a token plus
  ``ROW_TAG_TOKENS`` a row for its tag and line break. Cheap at a million rows (no tokenizer run per
  row), and on the high side for prose, since English averages about four characters a token.
- ``count_tokens_api: true``: before the first request is priced, two free ``count_tokens`` calls
  (``POST /v1/messages/count_tokens``) calibrate the local figures: one for the prefix alone (the
  request with no rows), one for the run's first request as it will be sent. The prefix (with the
  request's fixed overhead) then costs what the API counted, and every request's local row estimate
  is scaled by ``(sample - prefix) / local row estimate of the sample``. Any failure of those calls falls back
  to the local estimate with a warning: the guard never stops a run because counting failed.

Output is never estimated here: the guard prices ``max_tokens`` a request, an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import prompts, tokens

CHARS_PER_TOKEN = 3.0
ROW_TAG_TOKENS = 4  # "\n<rN>" around each row (3 tokens with the counter) plus slack
_FIXED = tokens.REQUEST_OVERHEAD_TOKENS + tokens.MESSAGE_OVERHEAD_TOKENS
# Params count_tokens accepts; max_tokens and the like are not input.
_COUNT_KEYS = ("model", "system", "messages", "tools", "tool_choice", "output_config", "thinking")


def local_row_tokens(chars: Any, n_items: Any) -> Any:
    """Local estimate of the rows' tokens in a request (without the fixed request overhead)."""
    return chars / CHARS_PER_TOKEN + ROW_TAG_TOKENS * n_items


@dataclass(frozen=True)
class Calibration:
    """How to turn a request's characters into input tokens for the estimate."""

    prefix_tokens: int
    rows_factor: float = 1.0
    fixed_tokens: int = _FIXED  # request and message overhead (inside prefix_tokens once calibrated)
    source: str = "local"  # "local" or "count_tokens"
    sample_local_tokens: int | None = None  # the calibration sample, local estimate
    sample_api_tokens: int | None = None  # the same request, as count_tokens counted it

    def rows_tokens(self, chars: int, n_items: int) -> int:
        """Input tokens of a request besides the shared prefix."""
        return math.ceil(self.rows_factor * local_row_tokens(chars, n_items)) + self.fixed_tokens

    def rows_tokens_many(self, chars: np.ndarray, n_items: np.ndarray) -> np.ndarray:
        """``rows_tokens`` of many requests (numpy arrays), element by element the same arithmetic."""
        return np.ceil(self.rows_factor * local_row_tokens(chars, n_items)) + self.fixed_tokens

    def describe(self) -> str:
        if self.source == "local":
            return f"local estimate: prefix {self.prefix_tokens} tokens, rows at {CHARS_PER_TOKEN:g} characters a token"
        return (
            f"estimate calibrated with count_tokens: prefix {self.prefix_tokens} tokens, rows x{self.rows_factor:.3f} "
            f"(sample request: {self.sample_api_tokens} tokens counted by the API, {self.sample_local_tokens} estimated locally)"
        )


def local(prefix_tokens: int, tokenizer_ratio: float = 1.0) -> Calibration:
    """The local estimate; rows scaled by the model's tokenizer (Claude 4.7+ counts ~30 % more [H55])."""
    return Calibration(prefix_tokens=prefix_tokens, rows_factor=tokenizer_ratio)


def count_tokens_params(params: dict) -> dict:
    """The part of Messages params that ``count_tokens`` takes (input only)."""
    return {k: params[k] for k in _COUNT_KEYS if k in params}


def _count(client: Any, params: dict) -> int:
    answer = client.messages.count_tokens(**count_tokens_params(params))
    value = getattr(answer, "input_tokens", None)
    if value is None and isinstance(answer, dict):
        value = answer.get("input_tokens")
    return int(value)


def calibrate(client: Any, spec: prompts.PromptSpec, sample_rows: Sequence[tuple[int, str]], *,
              cached: bool, local_prefix: int) -> Calibration:
    """Ask count_tokens about the prefix and one sample request; raises what the client raises."""
    probe = prompts.build_params(spec, [], cache=cached)  # everything but the rows
    sample = prompts.build_params(spec, list(sample_rows), cache=cached)
    api_prefix = _count(client, probe)  # so this holds the request and message overhead too
    api_sample = _count(client, sample)
    chars = sum(len(text) for _, text in sample_rows)
    local_rows = local_row_tokens(chars, len(sample_rows))
    factor = (api_sample - api_prefix) / local_rows if local_rows > 0 else 1.0
    return Calibration(
        prefix_tokens=api_prefix,
        rows_factor=max(factor, 0.0),
        fixed_tokens=0,
        source="count_tokens",
        sample_local_tokens=local_prefix + _FIXED + math.ceil(local_rows),
        sample_api_tokens=api_sample,
    )
