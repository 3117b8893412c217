"""Thinking on today's models, through the real SDK over HTTP.

Facts (REF = shared/reference/anthropic-api.md §2, §3; per model from _data/models.json): 5.x models
think when ``thinking`` is omitted, Opus 5.5 always; ``disabled`` (Haiku 5.5, effort <= high) and
``between_tools`` (Sonnet 5.5, no up-front thinking) turn it off; 4.x models think only when asked.
The answer comes after a thinking block; thinking is billed as output, reported in
``usage.output_tokens_details.thinking_tokens`` and counts toward ``max_tokens``.

How MANY thinking tokens is the emulator's documented model (emulator/thinking.py), not a fact.
Requests never send temperature/top_p/top_k (a 400 under API version 2026-10-21) and use
output_config json_schema rather than a forced tool (refused with thinking on, or on 5.5 models).
"""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types import TextBlock, ThinkingBlock

from claude_batch import catalog, prompts, tokens
from claude_batch.emulator import thinking

LABELS = ("positive", "negative", "neutral")
SYSTEM = (
    "Classify the sentiment of each customer review.\n\nLabels:\n"
    "- positive: the customer is happy or praises the product\n"
    "- negative: the customer complains or reports a problem\n"
    "- neutral: neither positive nor negative\n"
)
SCHEMA = {
    "type": "object",
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": list(LABELS)},
                    "ids": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["label", "ids"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["groups"],
    "additionalProperties": False,
}
TEXTS = ["I love it, works great", "It broke after two days, awful", "It is a box"]


def pack(model: str, texts=TEXTS, *, max_tokens: int = 4000, effort: str | None = None, thinking_param=None) -> dict:
    """A classification pack as our client sends it: rows in the user message, JSON-schema answer."""
    output_config: dict = {"format": {"type": "json_schema", "schema": SCHEMA}}
    if effort is not None:
        output_config["effort"] = effort
    params = {
        "model": model,
        "max_tokens": max_tokens,
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [{"role": "user", "content": prompts.render_rows(list(enumerate(texts, start=1)))}],
        "output_config": output_config,
    }
    if thinking_param is not None:
        params["thinking"] = thinking_param
    return params


def expected_thinking(model: str, rows: int, effort: str | None = None) -> int:
    """The emulator's thinking-token model (thinking.EFFORT_TOKENS), at the request's or model's effort."""
    level = effort or catalog.model_info(model).effort_default or thinking.FALLBACK_EFFORT
    base, per_row = thinking.EFFORT_TOKENS[level]
    return base + per_row * rows


@pytest.fixture
def sdk(emulator):
    with emulator.client(max_retries=0) as client:
        yield client


def answer_blocks(message) -> list:
    """Blocks selected by type, as clients must [H55]: the answer is not the first block."""
    return [b for b in message.content if b.type in ("text", "tool_use")]


# ------------------------------------------------------------------------------------ by default


def test_haiku_5_5_thinks_by_default_and_bills_it_as_output(sdk):
    model = "claude-haiku-5-5"
    assert catalog.model_info(model).thinking_default == "adaptive"
    message = sdk.messages.create(**pack(model))
    first, *rest = message.content
    assert isinstance(first, ThinkingBlock)  # the SDK parses it into its own type
    assert first.thinking == ""  # 5.5 models return empty thinking text by default [O55]
    assert isinstance(first.signature, str) and first.signature
    assert len(rest) == 1 and isinstance(rest[0], TextBlock)
    groups = json.loads(rest[0].text)["groups"]
    assert {g["label"] for g in groups} <= set(LABELS)
    assert sorted(i for g in groups for i in g["ids"]) == [1, 2, 3]

    usage = message.usage
    thought = usage.output_tokens_details.thinking_tokens
    assert thought == expected_thinking(model, rows=3)  # medium, the model's default effort
    assert usage.output_tokens == thought + tokens.count_model_text(rest[0].text, model)
    assert message.stop_reason == "end_turn"


def test_disabled_at_low_effort_gives_no_thinking(sdk):
    params = pack("claude-haiku-5-5", effort="low", thinking_param={"type": "disabled"})
    message = sdk.messages.create(**params)
    assert [b.type for b in message.content] == ["text"]
    assert message.usage.output_tokens_details.thinking_tokens == 0
    assert message.usage.output_tokens == tokens.count_model_text(message.content[0].text, params["model"])


def test_sonnet_5_5_between_tools_does_not_think_up_front(sdk):
    message = sdk.messages.create(**pack("claude-sonnet-5-5", effort="low", thinking_param={"type": "between_tools"}))
    assert [b.type for b in message.content] == ["text"]
    assert message.usage.output_tokens_details.thinking_tokens == 0
    # Omitted, the same model thinks.
    message = sdk.messages.create(**pack("claude-sonnet-5-5", effort="low"))
    assert [b.type for b in message.content] == ["thinking", "text"]


def test_opus_5_5_always_thinks_and_thinks_more_at_high_effort(sdk):
    model = "claude-opus-5-5"
    assert catalog.model_info(model).thinking_default == "always"
    used = {}
    for effort in ("low", "high"):
        message = sdk.messages.create(**pack(model, effort=effort))
        assert message.content[0].type == "thinking"
        used[effort] = message.usage.output_tokens_details.thinking_tokens
        assert used[effort] == expected_thinking(model, rows=3, effort=effort)
        (answer,) = answer_blocks(message)
        assert message.usage.output_tokens == used[effort] + tokens.count_model_text(answer.text, model)
    assert used["high"] > used["low"]


def test_more_rows_more_thinking(sdk):
    few = sdk.messages.create(**pack("claude-haiku-5-5", TEXTS[:1]))
    many = sdk.messages.create(**pack("claude-haiku-5-5", TEXTS * 10))
    assert few.usage.output_tokens_details.thinking_tokens < many.usage.output_tokens_details.thinking_tokens
    assert many.usage.output_tokens_details.thinking_tokens == expected_thinking("claude-haiku-5-5", rows=30)


def test_older_model_thinks_only_when_asked(sdk):
    model = "claude-haiku-4-5"
    assert catalog.model_info(model).thinking_default == "off"
    plain = sdk.messages.create(**pack(model))
    assert [b.type for b in plain.content] == ["text"]
    assert plain.usage.output_tokens_details.thinking_tokens == 0

    # enabled + budget_tokens: thinking capped at the budget (70 rows at effort high: 1,140 > 1,024).
    texts = [f"review number {i}: fine" for i in range(70)]
    asked = sdk.messages.create(**pack(model, texts, thinking_param={"type": "enabled", "budget_tokens": 1024}))
    first = asked.content[0]
    assert isinstance(first, ThinkingBlock) and first.thinking  # 4.x returns a summary text
    assert expected_thinking(model, rows=70) > 1024
    assert asked.usage.output_tokens_details.thinking_tokens == 1024
    (answer,) = answer_blocks(asked)
    assert asked.usage.output_tokens == 1024 + tokens.count_model_text(answer.text, model)


# ------------------------------------------------------------------------------------ max_tokens


def test_thinking_alone_reaching_max_tokens_leaves_no_answer(sdk):
    model = "claude-haiku-5-5"
    thought = expected_thinking(model, rows=3)
    message = sdk.messages.create(**pack(model, max_tokens=thought - 10))
    assert message.stop_reason == "max_tokens"
    assert [b.type for b in message.content] == ["thinking"]  # no answer block at all
    assert answer_blocks(message) == []
    assert message.usage.output_tokens == thought - 10
    assert message.usage.output_tokens_details.thinking_tokens == thought - 10


def test_answer_gets_what_thinking_leaves_of_max_tokens(sdk):
    model = "claude-haiku-5-5"
    thought = expected_thinking(model, rows=3)
    full = sdk.messages.create(**pack(model))
    (full_answer,) = answer_blocks(full)
    message = sdk.messages.create(**pack(model, max_tokens=thought + 5))
    assert message.stop_reason == "max_tokens"
    assert [b.type for b in message.content] == ["thinking", "text"]
    cut = message.content[1].text
    assert full_answer.text.startswith(cut) and len(cut) < len(full_answer.text)
    assert tokens.count_model_text(cut, model) <= 5
    assert message.usage.output_tokens == thought + tokens.count_model_text(cut, model)
    assert message.usage.output_tokens <= 5 + thought
    assert message.usage.output_tokens_details.thinking_tokens == thought


def test_max_tokens_zero_still_gives_no_content(sdk):
    message = sdk.messages.create(**pack("claude-haiku-5-5", max_tokens=0))
    assert message.content == [] and message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 0
    assert message.usage.output_tokens_details.thinking_tokens == 0


def test_output_rate_limit_counts_thinking(emulator, sdk):
    model = "claude-haiku-5-5"
    off = pack(model, effort="low", thinking_param={"type": "disabled"})
    answer_only = sdk.messages.create(**off).usage.output_tokens
    limit = answer_only * 2 + 1
    assert expected_thinking(model, rows=3) > limit
    emulator.set_faults(messages_otpm=limit)
    emulator.advance_clock(61)
    sdk.messages.create(**off)
    sdk.messages.create(**off)  # two answers without thinking stay under the limit
    emulator.advance_clock(61)
    sdk.messages.create(**pack(model))  # thinking alone fills the window
    with pytest.raises(anthropic.RateLimitError):
        sdk.messages.create(**off)


def test_thinking_in_a_batch(emulator, sdk):
    model = "claude-haiku-5-5"
    thought = expected_thinking(model, rows=3)
    requests = [
        {"custom_id": "full", "params": pack(model)},
        {"custom_id": "no-answer", "params": pack(model, max_tokens=thought)},
        {"custom_id": "cut", "params": pack(model, max_tokens=thought + 3)},
        {"custom_id": "off", "params": pack(model, effort="low", thinking_param={"type": "disabled"})},
    ]
    batch = sdk.messages.batches.create(requests=requests)
    assert emulator.wait_idle()
    results = {line.custom_id: line.result for line in sdk.messages.batches.results(batch.id)}
    assert {r.type for r in results.values()} == {"succeeded"}
    messages = {custom_id: r.message for custom_id, r in results.items()}

    full = messages["full"]
    assert isinstance(full.content[0], ThinkingBlock)
    assert full.stop_reason == "end_turn"
    assert full.usage.output_tokens_details.thinking_tokens == thought
    assert full.usage.output_tokens == thought + tokens.count_model_text(full.content[1].text, model)

    none = messages["no-answer"]
    assert [b.type for b in none.content] == ["thinking"] and none.stop_reason == "max_tokens"
    assert none.usage.output_tokens == thought == none.usage.output_tokens_details.thinking_tokens

    cut = messages["cut"]
    assert [b.type for b in cut.content] == ["thinking", "text"] and cut.stop_reason == "max_tokens"
    assert full.content[1].text.startswith(cut.content[1].text)
    assert cut.usage.output_tokens <= thought + 3

    off = messages["off"]
    assert [b.type for b in off.content] == ["text"]
    assert off.usage.output_tokens_details.thinking_tokens == 0
    assert {m.usage.service_tier for m in messages.values()} == {"batch"}


def test_thinking_survives_the_helper_processes(emulator_factory, monkeypatch):
    """Large batches are computed in helper processes (Prepared sent back as a plain tuple)."""
    from claude_batch.emulator import worker

    monkeypatch.setattr(worker, "PARALLEL_MIN_REQUESTS", 2)
    model = "claude-haiku-5-5"
    requests = [
        {"custom_id": "think", "params": pack(model)},
        {"custom_id": "off", "params": pack(model, effort="low", thinking_param={"type": "disabled"})},
    ]
    seen = []
    for processes in (0, 2):
        emu = emulator_factory(worker_processes=processes, state_dir=None)
        with emu.client(max_retries=0) as client:
            batch = client.messages.batches.create(requests=requests)
            assert emu.wait_idle()
            seen.append({line.custom_id: line.result.message.model_dump() for line in client.messages.batches.results(batch.id)})
        assert emu.stats()["batches_computed_in_helper_processes"] == (1 if processes else 0)
        emu.stop()
    for messages in seen:
        assert messages["think"]["usage"]["output_tokens_details"] == {"thinking_tokens": expected_thinking(model, rows=3)}
        assert messages["off"]["usage"]["output_tokens_details"] == {"thinking_tokens": 0}
    assert [{k: {**m, "id": None} for k, m in one.items()} for one in seen][0] == {
        k: {**m, "id": None} for k, m in seen[1].items()
    }


# ------------------------------------------------------------------------------------ the rules


@pytest.mark.parametrize(
    "model, param, messages_have_tool_result, expected",
    [
        ("claude-haiku-5-5", None, False, True),
        ("claude-haiku-5-5", {"type": "disabled"}, False, False),
        ("claude-sonnet-5-5", {"type": "between_tools"}, False, False),
        ("claude-sonnet-5-5", {"type": "between_tools"}, True, True),
        ("claude-opus-5-5", None, False, True),
        ("claude-haiku-4-5", None, False, False),
        ("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 2000}, False, True),
        ("claude-opus-4-8", {"type": "adaptive"}, False, True),
    ],
)
def test_when_the_model_thinks(model, param, messages_have_tool_result, expected):
    params: dict = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if messages_have_tool_result:
        params["messages"] = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ]
    if param is not None:
        params["thinking"] = param
    assert thinking.thinks(params, catalog.model_info(model)) is expected


def test_row_count_matches_prompts_parse_rows():
    text = prompts.render_rows([(1, "a <b> & c"), (7, ""), (12, "x\ny")])
    assert len(thinking._ROW_TAG_RE.findall(text)) == len(prompts.parse_rows(text)) == 3


def test_a_model_that_cannot_think_off_gets_an_error_not_silence(sdk):
    """Opus 5.5 cannot turn thinking off [O55]: validation answers 400 (the emulator never quietly
    answers without thinking)."""
    params = pack("claude-opus-5-5", effort="low", thinking_param={"type": "disabled"})
    try:
        message = sdk.messages.create(**params)
    except anthropic.BadRequestError:
        return
    assert message.content[0].type == "thinking"
