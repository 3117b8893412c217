"""The one documented token counter shared by the emulator and the local estimates.

It is a deterministic stand-in for Claude's tokenizer, close enough in scale (about four characters
a token for English prose) that cost ratios computed with it mean something. Every figure in one
comparison must come from the same counter, so the emulator reports usage with it and the budget
guard estimates with it when it does not ask the API's `count_tokens`.

Rules (each match of the regex is one token):
- a run of 1 to 4 word characters, with one optional leading whitespace character;
- a run of 1 to 3 punctuation or symbol characters, with one optional leading whitespace character;
- a run of whitespace not absorbed by the two rules above.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

_TOKEN_RE = re.compile(r"\s?\w{1,4}|\s?[^\w\s]{1,3}|\s+")

# Fixed costs the real API adds around content; small, but they keep an empty message from costing 0.
MESSAGE_OVERHEAD_TOKENS = 3
REQUEST_OVERHEAD_TOKENS = 3


def count_text(text: str) -> int:
    """Tokens in a piece of text."""
    if not text:
        return 0
    return len(_TOKEN_RE.findall(text))


def _content_text(content: Any) -> Iterable[str]:
    """Text of a message's content (a string or a list of blocks)."""
    if isinstance(content, str):
        yield content
        return
    for block in content or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            yield block.get("text", "")
        elif kind == "tool_use":
            yield json.dumps(block.get("input", {}), separators=(",", ":"))
        elif kind == "tool_result":
            yield from _content_text(block.get("content", ""))
        else:
            yield json.dumps(block, separators=(",", ":"), sort_keys=True)


def count_tools(tools: list[dict] | None) -> int:
    """Tokens of tool definitions, counted on their compact JSON."""
    total = 0
    for tool in tools or ():
        clean = {k: v for k, v in tool.items() if k != "cache_control"}
        total += count_text(json.dumps(clean, separators=(",", ":"), sort_keys=True))
    return total


def count_system(system: Any) -> int:
    if system is None:
        return 0
    return sum(count_text(t) for t in _content_text(system))


def count_message(message: dict) -> int:
    return MESSAGE_OVERHEAD_TOKENS + sum(count_text(t) for t in _content_text(message.get("content")))


def count_output_format(params: dict) -> int:
    """Structured-output schemas are part of the prompt the model sees."""
    fmt = (params.get("output_config") or {}).get("format")
    if not fmt:
        return 0
    return count_text(json.dumps(fmt, separators=(",", ":"), sort_keys=True))


def count_request(params: dict) -> int:
    """Input tokens of a whole Messages request (tools, output format, system, messages)."""
    return (
        REQUEST_OVERHEAD_TOKENS
        + count_tools(params.get("tools"))
        + count_output_format(params)
        + count_system(params.get("system"))
        + sum(count_message(m) for m in params.get("messages") or ())
    )
