"""One Messages request in, one Message object out (shared by /v1/messages and the batch worker).

Steps: check params, count input tokens by part (usage.py), get the answer (responder.py), cap it
at ``max_tokens`` (``prepare``, pure: it may run in a helper process), then account the prompt
cache (caching.py, always in the server process, in request order) and fill in the usage
(``finish``).

- Output tokens: ``tokens.count_text`` of the answer text (the JSON text for output_config answers,
  the compact JSON of the input for tool_use answers), scaled by the model's tokenizer ratio
  (``tokens.tokenizer_ratio``: Claude 4.7 and later count ~30 % more [H55]), plus the thinking tokens.
- Thinking (thinking.py: when the model thinks, and the emulator's token model): the content starts
  with a thinking block, then the answer block [H55]. Thinking is billed as output and counts toward
  ``max_tokens`` [O5; REF §3]: ``usage.output_tokens`` = thinking + answer tokens and
  ``usage.output_tokens_details.thinking_tokens`` = the thinking part (0 when the model did not
  think; present on every message, SDK:types/output_tokens_details.py). When the thinking alone
  reaches ``max_tokens`` the content is just the (cut) thinking block, with no answer; otherwise
  the answer gets ``max_tokens`` minus the thinking tokens.
- ``stop_reason``: ``tool_use`` for a tool answer, ``end_turn`` for text, ``max_tokens`` when the
  answer has more tokens than it has left: a text answer is then cut to fit, a tool answer becomes
  a tool_use block with an empty input (what a cut-off tool call amounts to).
  ``max_tokens: 0`` (cache pre-warming) gives no content and 0 output tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from .. import tokens
from .caching import PromptCache, prefix_breakpoints
from .errormodel import ErrorModel
from .responder import Answer, Responder, tool_use_id, user_text
from .thinking import Thinking, plan as plan_thinking
from .usage import request_tokens
from .validation import check_breakpoints, check_params


class Prepared(NamedTuple):
    """Everything about a request's answer except its cache usage.

    A tuple of plain values so that helper processes can send it back cheaply.
    """

    model: str
    content_json: str  # the content blocks, already JSON
    stop_reason: str
    output_tokens: int
    input_total: int
    breakpoints: list  # of caching.Breakpoint, or plain (tokens, digest, ttl) tuples
    thinking_tokens: int = 0  # the part of output_tokens spent thinking


@dataclass
class Outcome:
    message_json: str
    input_total: int  # all input tokens (uncached + cache read + cache write)
    billed_input: int  # input tokens + cache writes (what rate limits count)
    output_tokens: int

    @property
    def message(self) -> dict:
        return json.loads(self.message_json)


def _truncate(text: str, max_tokens: int, ratio: float = 1.0) -> str:
    """Longest prefix of ``text`` with at most ``max_tokens`` tokens (binary search)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if tokens.count_text(text[:middle], ratio=ratio) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _render_answer(answer: Answer, max_tokens: int, ratio: float) -> tuple[list[dict], int, str]:
    """(content blocks, output tokens, stop_reason) of the answer alone under ``max_tokens`` (>= 1)."""
    if answer.is_tool:
        compact = json.dumps(answer.tool_input, separators=(",", ":"), ensure_ascii=False)
        count = tokens.count_text(compact, ratio=ratio)
        block = {"type": "tool_use", "id": tool_use_id(answer.tool_input), "name": answer.tool_name}
        if count > max_tokens:
            return [{**block, "input": {}}], max_tokens, "max_tokens"
        return [{**block, "input": answer.tool_input}], max(1, count), "tool_use"
    text = answer.text or ""
    count = tokens.count_text(text, ratio=ratio)
    if count > max_tokens:
        cut = _truncate(text, max_tokens, ratio)
        return [{"type": "text", "text": cut}], tokens.count_text(cut, ratio=ratio), "max_tokens"
    return [{"type": "text", "text": text}], max(1, count), "end_turn"


def render(
    answer: Answer, max_tokens: int, *, ratio: float = 1.0, thinking: Thinking | None = None
) -> tuple[list[dict], int, str, int]:
    """(content blocks, output tokens incl. thinking, stop_reason, thinking tokens) under ``max_tokens``.

    ``ratio``: the model's tokenizer ratio for the answer's text; ``thinking``: what the model
    thinks first (None: it does not think). Thinking counts toward ``max_tokens`` [O5; REF §3].
    """
    if max_tokens == 0:
        return [], 0, "max_tokens", 0
    if thinking is None:
        content, count, stop_reason = _render_answer(answer, max_tokens, ratio)
        return content, count, stop_reason, 0
    if thinking.tokens >= max_tokens:
        # Cut while thinking: no answer at all ("max_tokens" can leave no text, REF §3).
        return [thinking.block()], max_tokens, "max_tokens", max_tokens
    content, count, stop_reason = _render_answer(answer, max_tokens - thinking.tokens, ratio)
    return [thinking.block(), *content], thinking.tokens + count, stop_reason, thinking.tokens


def _block_json(block: dict) -> str:
    kind = block["type"]
    # The common blocks, without walking them through the generic encoder.
    if kind == "text":
        return f'{{"type":"text","text":{json.dumps(block["text"], ensure_ascii=False)}}}'
    if kind == "thinking":
        return (
            f'{{"type":"thinking","thinking":{json.dumps(block["thinking"], ensure_ascii=False)},'
            f'"signature":{json.dumps(block["signature"])}}}'
        )
    return json.dumps(block, ensure_ascii=False, separators=(",", ":"))


def _content_json(content: list[dict]) -> str:
    return "[" + ",".join(_block_json(block) for block in content) + "]"


def prepare(
    params: object, responder: Responder, *, in_batch: bool, api_version: str, day: date,
    errors: ErrorModel | None = None,
) -> Prepared:
    """Raises validation.ParamsError for bad params (judged by ``api_version``'s rules and, for
    retired models, by ``day``: today on the emulator's virtual clock). ``errors``: the error model
    (errormodel.py) the answer's labels go through, None when it is off."""
    checked = check_params(params, in_batch=in_batch, api_version=api_version, day=day)
    counted = request_tokens(checked)
    check_breakpoints([p.ttl for p in counted.parts if p.ttl is not None])
    answer = responder.answer(checked, errors)
    model = checked["model"]
    content, output_tokens, stop_reason, thinking_tokens = render(
        answer,
        checked["max_tokens"],
        ratio=tokens.tokenizer_ratio(model),
        thinking=plan_thinking(checked, user_text(checked)),
    )
    return Prepared(
        model=checked["model"],
        content_json=_content_json(content),
        stop_reason=stop_reason,
        output_tokens=output_tokens,
        input_total=counted.total,
        breakpoints=[tuple(bp) for bp in prefix_breakpoints(counted)],
        thinking_tokens=thinking_tokens,
    )


def finish(
    prepared: Prepared, cache: PromptCache, *, key_id: str, message_id: str, service_tier: str
) -> Outcome:
    cached = cache.account(key_id, prepared.model, prepared.breakpoints)
    uncached = prepared.input_total - cached.read - cached.write
    # Assembled as text (the API's usage fields): the content is already JSON, and
    # this runs once per batch request.
    usage = (
        f'{{"input_tokens":{uncached},"output_tokens":{prepared.output_tokens},'
        f'"output_tokens_details":{{"thinking_tokens":{prepared.thinking_tokens}}},'
        f'"cache_creation_input_tokens":{cached.write},"cache_read_input_tokens":{cached.read},'
        f'"cache_creation":{{"ephemeral_5m_input_tokens":{cached.write_5m},'
        f'"ephemeral_1h_input_tokens":{cached.write_1h}}},"service_tier":"{service_tier}"}}'
    )
    message_json = (
        f'{{"id":{json.dumps(message_id)},"type":"message","role":"assistant",'
        f'"model":{json.dumps(prepared.model, ensure_ascii=False)},"content":{prepared.content_json},'
        f'"stop_reason":"{prepared.stop_reason}","stop_sequence":null,"usage":{usage}}}'
    )
    return Outcome(message_json, prepared.input_total, uncached + cached.write, prepared.output_tokens)


class Engine:
    def __init__(self, cache: PromptCache, responder: Responder) -> None:
        self.cache = cache
        self.responder = responder

    def run(
        self,
        params: object,
        *,
        key_id: str,
        message_id: str,
        service_tier: str,
        in_batch: bool,
        api_version: str,
        day: date,
        errors: ErrorModel | None = None,
    ) -> Outcome:
        """Raises validation.ParamsError for bad params (before touching the cache)."""
        prepared = prepare(params, self.responder, in_batch=in_batch, api_version=api_version, day=day,
                           errors=errors)
        return finish(prepared, self.cache, key_id=key_id, message_id=message_id, service_tier=service_tier)
