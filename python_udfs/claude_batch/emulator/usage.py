"""Input tokens of a request, split into the parts a cache prefix is made of.

The numbers come from ``claude_batch.tokens`` (the one documented counter): the total is what
``tokens.count_request`` returns, built here from the same public functions applied part by part
(request overhead, each tool, the output format, each system block, each message's overhead and
blocks), so that the token count of any cache prefix is a plain prefix sum. A test checks that the
total always equals ``tokens.count_request``.

Tokenizer generations: each part is counted with the base counter, then scaled by the model's
``tokenizer_ratio`` (catalog, models.json ``tokenizers``; Claude 4.7 and later count about 30 % more
[H55]) with ``tokens.scale``, part by part, exactly as ``tokens.count_request`` does, so prefix sums
stay exact and the total still equals the counter's.

Counting long texts is the emulator's main CPU cost (every request of a batch repeats the same
system prompt), so texts and tool definitions are memoized. The memos hold BASE counts (ratio 1.0),
which do not depend on the model: the ratio is applied after the lookup (one integer multiply per
part), so one memo entry serves every model and a cached count can never carry another model's
ratio.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from .. import tokens

_MEMO_MIN_CHARS = 128
_MEMO_MAX_ENTRIES = 20_000
_memo: dict[str, int] = {}
_memo_lock = threading.Lock()


def _memoized(key: str, compute) -> int:
    value = _memo.get(key)
    if value is None:
        value = compute()
        with _memo_lock:
            if len(_memo) >= _MEMO_MAX_ENTRIES:
                _memo.clear()
            _memo[key] = value
    return value


def count_text(text: str, *, memo: bool = True) -> int:
    """tokens.count_text, memoized for long texts that repeat (system prompts)."""
    if not memo or len(text) < _MEMO_MIN_CHARS:
        return tokens.count_text(text)
    return _memoized(text, lambda: tokens.count_text(text))


class _Recent:
    """The last few (value, identity, tokens) seen: requests of one batch share tools and format.

    Comparing with ``==`` runs in C and is much cheaper than dumping the value to JSON again.
    """

    def __init__(self, size: int = 8) -> None:
        self._items: list[tuple[Any, str, int]] = []
        self._size = size
        self._lock = threading.Lock()

    def lookup(self, value: Any, compute) -> tuple[str, int]:
        for known, identity, count in self._items:
            if known == value:
                return identity, count
        identity, count = compute()
        with self._lock:
            self._items = [(value, identity, count), *self._items[: self._size - 1]]
        return identity, count


_recent_tools = _Recent()
_recent_formats = _Recent()


def _canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _block_identity(block: Any) -> str:
    """The block as the cache sees it: its content without the cache_control marker."""
    if isinstance(block, dict) and block.get("type") == "text" and block.keys() <= {"type", "text", "cache_control"}:
        return "text:" + str(block.get("text"))  # the common case, without a JSON dump
    return _canonical(_strip_cache_control(block))


def _strip_cache_control(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _ttl(block: Any) -> str | None:
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return block["cache_control"].get("ttl", "5m")
    return None


def block_tokens(block: Any, *, memo: bool = True) -> int:
    """Tokens of one content block, as tokens.count_message counts it."""
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return count_text(block["text"], memo=memo)
    # count_system sums the block's content text exactly as a message's blocks are summed.
    return tokens.count_system([block])


@dataclass
class Part:
    """One position of the prompt prefix: its tokens, identity (without cache_control), breakpoint."""

    tokens: int
    identity: str
    ttl: str | None = None


@dataclass
class RequestTokens:
    parts: list[Part]

    @property
    def total(self) -> int:
        return sum(p.tokens for p in self.parts)


def request_tokens(params: dict) -> RequestTokens:
    """Parts in prefix order: tools, output format, system, messages (see the prompt-caching docs).

    Each part's tokens are for the tokenizer of ``params["model"]`` (ratio 1.0 if unknown).
    """
    ratio = tokens.tokenizer_ratio(params.get("model"))
    # The base count of every part, scaled per part (identity when the ratio is 1.0).
    sc = (lambda n: n) if ratio == 1.0 else (lambda n: tokens.scale(n, ratio))
    parts = [Part(sc(tokens.REQUEST_OVERHEAD_TOKENS), "request")]
    for tool in params.get("tools") or ():
        identity, count = _recent_tools.lookup(
            tool, lambda: ("tool:" + _canonical(_strip_cache_control(tool)), tokens.count_tools([tool]))
        )
        parts.append(Part(sc(count), identity, _ttl(tool)))
    fmt = (params.get("output_config") or {}).get("format")
    if fmt:
        identity, count = _recent_formats.lookup(
            fmt, lambda: ("format:" + _canonical(fmt), tokens.count_output_format({"output_config": {"format": fmt}}))
        )
        parts.append(Part(sc(count), identity))
    system = params.get("system")
    if isinstance(system, str):
        parts.append(Part(sc(count_text(system)), "system:" + system))
    elif system:
        for block in system:
            parts.append(Part(sc(block_tokens(block)), "system:" + _block_identity(block), _ttl(block)))
    message_overhead = sc(tokens.MESSAGE_OVERHEAD_TOKENS)
    for message in params.get("messages") or ():
        parts.append(Part(message_overhead, "message:" + str(message.get("role"))))
        content = message.get("content")
        if isinstance(content, str):
            # Message texts are mostly unique (the rows): not worth memoizing.
            parts.append(Part(sc(count_text(content, memo=False)), "text:" + content))
        else:
            for block in content or ():
                parts.append(
                    Part(sc(block_tokens(block, memo=False)), "block:" + _block_identity(block), _ttl(block))
                )
    top = params.get("cache_control")
    if isinstance(top, dict) and len(parts) > 1 and parts[-1].ttl is None:
        # Top-level cache_control marks the last cacheable block of the request.
        parts[-1].ttl = top.get("ttl", "5m")
    return RequestTokens(parts)
