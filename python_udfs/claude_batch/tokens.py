"""The one documented token counter shared by the emulator and the local estimates.

It is a deterministic stand-in for Claude's tokenizer, close enough in scale (about four characters
a token for English prose) that cost ratios computed with it mean something. Every figure in one
comparison must come from the same counter, so the emulator reports usage with it and the budget
guard estimates with it when it does not ask the API's `count_tokens`.

Rules (each match of the regex is one token):
- a run of 1 to 4 word characters, with one optional leading whitespace character;
- a run of 1 to 3 punctuation or symbol characters, with one optional leading whitespace character;
- a run of whitespace not absorbed by the two rules above.

Tokenizer generations. The regex gives the count of the older tokenizer (Haiku 4.5 and models
before Claude 4.7). Claude 4.7 and later (incl. Haiku 5.5 and Sonnet 5.5) count the same text as
about 30 % more tokens [H55; REF §2 "Tokenizer"]. The factor is data, not code:
``catalog.model_info(model).tokenizer_ratio`` (models.json ``tokenizers``; 1.0 or 1.3). A model's
count is the base count scaled by its ratio with :func:`scale`, which rounds up, and it is applied
PER PART of a request, not to the total: request overhead, each tool, the output format, each
system block (or the system string), each message's overhead and each of its content blocks (or
its string content). That way the emulator's cache-prefix counts (emulator/usage.py) are plain
prefix sums of the same numbers, and their total is :func:`count_request`. The ``ratio`` keyword
of the counting functions below applies that rule; it defaults to 1.0 (the base counter).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Iterator

_TOKEN_RE = re.compile(r"\s?\w{1,4}|\s?[^\w\s]{1,3}|\s+")

# Fixed costs the real API adds around content; small, but they keep an empty message from costing 0.
MESSAGE_OVERHEAD_TOKENS = 3
REQUEST_OVERHEAD_TOKENS = 3

_RATIO_SCALE = 1000  # ratios are applied as exact integers in thousandths (1.3 -> 1300)
_ratios: dict[str, float] = {}


def scale(count: int, ratio: float) -> int:
    """``count`` base tokens in a tokenizer that counts ``ratio`` times as many: ceil(count * ratio).

    The one rounding rule, exact in integers (ratio taken to 1/1000), so that 10 * 1.3 gives 13 and
    not 14 from a float product like 13.000000000000002.
    """
    if ratio == 1.0 or count <= 0:
        return count
    return -(-count * round(ratio * _RATIO_SCALE) // _RATIO_SCALE)


def tokenizer_ratio(model: Any) -> float:
    """The model's ``tokenizer_ratio`` from the catalog [H55]; 1.0 for an unknown or missing id."""
    if not isinstance(model, str):
        return 1.0
    ratio = _ratios.get(model)
    if ratio is None:
        from . import catalog  # here, not at import: catalog is the heavier module

        if not catalog.is_known(model):
            return 1.0  # not cached: the model may be registered later (catalog.register)
        ratio = _ratios[model] = catalog.model_info(model).tokenizer_ratio
    return ratio


def count_text(text: str, *, ratio: float = 1.0) -> int:
    """Tokens in a piece of text (one part: scaled once)."""
    if not text:
        return 0
    count = len(_TOKEN_RE.findall(text))
    return count if ratio == 1.0 else scale(count, ratio)


def count_model_text(text: str, model: Any) -> int:
    """Tokens of one piece of text (e.g. an answer) for ``model``'s tokenizer."""
    return count_text(text, ratio=tokenizer_ratio(model))


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


def _content_parts(content: Any) -> Iterator[int]:
    """Base tokens of each part of a content value: the whole string, else each block."""
    if isinstance(content, str):
        yield count_text(content)
        return
    for block in content or ():
        yield sum(count_text(t) for t in _content_text([block]))


def count_tools(tools: list[dict] | None, *, ratio: float = 1.0) -> int:
    """Tokens of tool definitions, counted on their compact JSON (each tool one part)."""
    total = 0
    for tool in tools or ():
        clean = {k: v for k, v in tool.items() if k != "cache_control"}
        total += scale(count_text(json.dumps(clean, separators=(",", ":"), sort_keys=True)), ratio)
    return total


def count_system(system: Any, *, ratio: float = 1.0) -> int:
    """Tokens of a system prompt (the string, or each block, one part)."""
    if system is None:
        return 0
    return sum(scale(n, ratio) for n in _content_parts(system))


def count_message(message: dict, *, ratio: float = 1.0) -> int:
    """Tokens of one message: its overhead, then its string content or each block, one part each."""
    return scale(MESSAGE_OVERHEAD_TOKENS, ratio) + sum(
        scale(n, ratio) for n in _content_parts(message.get("content"))
    )


def count_output_format(params: dict, *, ratio: float = 1.0) -> int:
    """Structured-output schemas are part of the prompt the model sees (one part)."""
    fmt = (params.get("output_config") or {}).get("format")
    if not fmt:
        return 0
    return count_text(json.dumps(fmt, separators=(",", ":"), sort_keys=True), ratio=ratio)


def count_request(params: dict) -> int:
    """Input tokens of a whole Messages request (tools, output format, system, messages), for the
    tokenizer of ``params["model"]`` (ratio 1.0 when the model is missing or unknown)."""
    ratio = tokenizer_ratio(params.get("model"))
    return (
        scale(REQUEST_OVERHEAD_TOKENS, ratio)
        + count_tools(params.get("tools"), ratio=ratio)
        + count_output_format(params, ratio=ratio)
        + count_system(params.get("system"), ratio=ratio)
        + sum(count_message(m, ratio=ratio) for m in params.get("messages") or ())
    )
