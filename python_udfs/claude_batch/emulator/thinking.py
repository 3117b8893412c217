"""Whether the emulated model thinks on a request, and how many thinking tokens it spends.

Facts, per model from ``_data/models.json`` through ``claude_batch.catalog`` (``thinking_default``,
``effort_default``) and from shared/reference/anthropic-api.md (REF):

- ``thinking`` omitted: the model thinks when its ``thinking_default`` is ``adaptive`` or ``always``
  (Haiku/Sonnet 5.5, Opus 5.5, the other 5.x models) [H55][S55][O55][O5]; models whose default is
  ``off`` (the 4.x ones) think only when asked with ``adaptive`` or ``enabled`` [O5; REF §2 table].
- ``{"type": "disabled"}`` turns thinking off [H55P][O5][S5]. ``{"type": "between_tools"}`` runs
  without up-front thinking: no thinking until a tool result comes back (i.e. a ``tool_result``
  block in the messages) [S55][S55P]. ``adaptive`` and ``enabled`` (4.x, with ``budget_tokens``)
  turn it on [REF §3]. Which type a model accepts, and at which effort, is validation's business
  (validation.py); a model whose default is ``always`` cannot turn thinking off [O55], so if such a
  request gets past validation it still thinks here.
- The answer is not the first block: a thinking block ``{"type": "thinking", "thinking": ...,
  "signature": ...}`` comes first and clients select blocks by type [H55; REF §3;
  SDK:types/thinking_block.py]. The signature is an opaque string.
- Thinking text: ``thinking.display`` ``summarized|omitted``, default per model; on 5.5 models the
  default returns empty thinking text [O55; REF §3]. Emulator choice: the default is empty text on
  every model that thinks by default (5.x) and a short summary on the 4.x models; ``summarized``
  asks for the summary and ``omitted`` for empty text on any model.
- Thinking is billed as output and counts toward ``max_tokens`` (a hard cap on thinking + answer);
  ``usage.output_tokens_details.thinking_tokens`` is the thinking part of ``output_tokens``
  [O5; REF §3; SDK:types/output_tokens_details.py]. engine.render applies this.

NOT a fact, an emulator model (deterministic, so tests can compute it): the number of thinking
tokens is ``base + per_row * rows`` for the request's effort (``output_config.effort``, else the
model's ``effort_default``, else ``high``), with (base, per_row) from ``EFFORT_TOKENS`` and rows =
the number of ``<rN>`` rows in the last user message (prompts.parse_rows), or 1 when it has none.
With ``{"type": "enabled", "budget_tokens": B}`` it is ``min(that, B)``. These are tokens as such,
not text, so the model's tokenizer ratio does not apply to them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from typing import NamedTuple

from .. import catalog

# effort -> (tokens per request, tokens per row): the emulator's model, see the module docstring.
EFFORT_TOKENS = {
    "low": (40, 2),
    "medium": (120, 6),
    "high": (300, 12),
    "xhigh": (600, 24),
    "max": (1200, 48),
}
FALLBACK_EFFORT = "high"

# Counts the rows prompts.parse_rows finds (its pattern is "<r(\d+)>([^<]*)": one match per tag)
# without building their texts: this runs for every request that thinks.
_ROW_TAG_RE = re.compile(r"<r\d+>")


class Thinking(NamedTuple):
    """What the model thinks on one request (before ``max_tokens`` cuts it)."""

    tokens: int
    text: str
    signature: str

    def block(self) -> dict:
        return {"type": "thinking", "thinking": self.text, "signature": self.signature}


def _has_tool_result(params: dict) -> bool:
    for message in params.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    return True
    return False


def thinks(params: dict, info: catalog.ModelInfo) -> bool:
    """Whether the model thinks on this request (rules in the module docstring)."""
    if info.thinking_default == "always":  # cannot be turned off [O55]
        return True
    config = params.get("thinking")
    kind = config.get("type") if isinstance(config, dict) else None
    if kind is None:
        return info.thinking_default in ("adaptive", "always")
    if kind == "disabled":
        return False
    if kind == "between_tools":  # no up-front thinking [S55][S55P]
        return _has_tool_result(params)
    return kind in ("adaptive", "enabled")


def effort(params: dict, info: catalog.ModelInfo) -> str:
    """``output_config.effort``, else the model's default effort, else ``high``."""
    config = params.get("output_config")
    requested = config.get("effort") if isinstance(config, dict) else None
    if requested in EFFORT_TOKENS:
        return requested
    if info.effort_default in EFFORT_TOKENS:
        return info.effort_default
    return FALLBACK_EFFORT


def planned_tokens(params: dict, level: str, user_text: str) -> int:
    """The emulator's thinking-token model (not a fact; module docstring)."""
    base, per_row = EFFORT_TOKENS[level]
    rows = len(_ROW_TAG_RE.findall(user_text)) or 1
    count = base + per_row * rows
    config = params.get("thinking")
    if isinstance(config, dict) and config.get("type") == "enabled":
        budget = config.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
            count = min(count, budget)
    return count


@lru_cache(maxsize=4096)
def _signature(model: str, level: str, count: int, text: str) -> str:
    """An opaque, deterministic stand-in for the API's signature."""
    digest = hashlib.sha256(f"{model}\x00{level}\x00{count}\x00{text}".encode()).digest()
    return base64.b64encode(b"\x12" + digest + hashlib.sha256(digest).digest()).decode()


def _summary(rows: int) -> str:
    noun = "row" if rows == 1 else "rows"
    return f"Reading the {rows} {noun} and weighing each against the labels before answering."


def plan(params: dict, user_text: str) -> Thinking | None:
    """The thinking of a checked request, or None when the model does not think on it."""
    model = params.get("model")
    if not isinstance(model, str) or not catalog.is_known(model):
        return None
    info = catalog.model_info(model)
    if not thinks(params, info):
        return None
    level = effort(params, info)
    count = planned_tokens(params, level, user_text)
    config = params.get("thinking")
    display = config.get("display") if isinstance(config, dict) else None
    if display is None:
        # Empty text by default on 5.5 models [O55]; assumed for every model that thinks by default.
        display = "omitted" if info.thinks_by_default else "summarized"
    text = _summary(len(_ROW_TAG_RE.findall(user_text)) or 1) if display == "summarized" else ""
    return Thinking(count, text, _signature(info.name, level, count, text))
