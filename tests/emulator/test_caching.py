"""Prompt-cache accounting: documented rules, one token counter."""

from __future__ import annotations

import anthropic
import pytest

from claude_batch import catalog, prompts, tokens
from claude_batch.emulator.usage import request_tokens
from conftest import SPEC, params_for, results_by_id, wait_ended

LONG = " ".join(f"Rule {i}: judge the review only by what the customer says about item {i}." for i in range(120))


def spec(model: str = "claude-sonnet-4-6", ttl: str = "1h", instructions: str = LONG) -> prompts.PromptSpec:
    return prompts.PromptSpec(
        model=model, instructions=instructions, labels=SPEC.labels, cache_ttl=ttl
    )


def prefix_tokens(params: dict) -> int:
    """Tokens up to and including the system block: overhead, output format, system."""
    return tokens.count_request({k: params[k] for k in ("system", "output_config") if k in params})


def test_second_request_with_the_same_long_prefix_reads_from_cache(client):
    first_params = prompts.build_params(spec(), [(1, "I love it")], cache=True)
    prefix = prefix_tokens(first_params)
    assert prefix >= catalog.model_info("claude-sonnet-4-6").min_cacheable_tokens

    first = client.messages.create(**first_params).usage
    assert first.cache_creation_input_tokens == prefix
    assert first.cache_creation.ephemeral_1h_input_tokens == prefix
    assert first.cache_creation.ephemeral_5m_input_tokens == 0
    assert first.cache_read_input_tokens == 0
    assert first.input_tokens == tokens.count_request(first_params) - prefix

    second_params = prompts.build_params(spec(), [(1, "awful, it broke"), (2, "meh")], cache=True)
    second = client.messages.create(**second_params).usage
    assert second.cache_read_input_tokens == prefix
    assert second.cache_creation_input_tokens == 0
    total = second.input_tokens + second.cache_read_input_tokens + second.cache_creation_input_tokens
    assert total == tokens.count_request(second_params)


def test_short_prefix_is_never_cached(client):
    params = prompts.build_params(spec(instructions="Classify."), [(1, "I love it")], cache=True)
    assert prefix_tokens(params) < catalog.model_info(params["model"]).min_cacheable_tokens
    for _ in range(2):
        usage = client.messages.create(**params).usage
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
        assert usage.input_tokens == tokens.count_request(params)


def test_minimum_is_per_model(client):
    # Long enough for Sonnet (1,024) but not for Haiku 4.5 (4,096).
    sonnet = prompts.build_params(spec("claude-sonnet-4-6"), [(1, "x")], cache=True)
    haiku = prompts.build_params(spec("claude-haiku-4-5"), [(1, "x")], cache=True)
    assert prefix_tokens(haiku) < catalog.model_info("claude-haiku-4-5").min_cacheable_tokens
    assert client.messages.create(**sonnet).usage.cache_creation_input_tokens > 0
    assert client.messages.create(**haiku).usage.cache_creation_input_tokens == 0


def test_caches_are_per_api_key(emulator, client):
    params = prompts.build_params(spec(), [(1, "x")], cache=True)
    client.messages.create(**params)
    with anthropic.Anthropic(base_url=emulator.base_url, api_key="another-key", max_retries=0) as other:
        usage = other.messages.create(**params).usage
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens > 0
    assert client.messages.create(**params).usage.cache_read_input_tokens > 0


def test_5_minute_ttl_expires_and_reads_refresh_it(emulator, client):
    params = prompts.build_params(spec(ttl="5m"), [(1, "x")], cache=True)
    usage = client.messages.create(**params).usage
    assert usage.cache_creation.ephemeral_5m_input_tokens > 0
    emulator.advance_clock(4 * 60)
    assert client.messages.create(**params).usage.cache_read_input_tokens > 0  # refreshes the TTL
    emulator.advance_clock(4 * 60)  # 8 min after the write, 4 after the read
    assert client.messages.create(**params).usage.cache_read_input_tokens > 0
    emulator.advance_clock(6 * 60)
    usage = client.messages.create(**params).usage
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens > 0


def test_1_hour_ttl(emulator, client):
    params = prompts.build_params(spec(ttl="1h"), [(1, "x")], cache=True)
    client.messages.create(**params)
    emulator.advance_clock(30 * 60)
    assert client.messages.create(**params).usage.cache_read_input_tokens > 0
    emulator.advance_clock(61 * 60)
    assert client.messages.create(**params).usage.cache_read_input_tokens == 0


def test_two_breakpoints_split_the_write_by_ttl(client):
    base = prompts.build_params(spec(), [(1, "x")], cache=True)  # system: 1 h breakpoint

    def with_user_breakpoint(text: str) -> dict:
        block = {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": "5m"}}
        return {**base, "messages": [{"role": "user", "content": [block]}]}

    first_params = with_user_breakpoint("first question " * 10)
    p1 = prefix_tokens(base)
    p2 = tokens.count_request(first_params)  # the second breakpoint ends the prompt
    usage = client.messages.create(**first_params).usage
    assert usage.cache_creation.ephemeral_1h_input_tokens == p1
    assert usage.cache_creation.ephemeral_5m_input_tokens == p2 - p1
    assert usage.input_tokens == 0

    assert client.messages.create(**first_params).usage.cache_read_input_tokens == p2

    other = with_user_breakpoint("another question " * 10)
    usage = client.messages.create(**other).usage
    assert usage.cache_read_input_tokens == p1
    assert usage.cache_creation.ephemeral_5m_input_tokens == tokens.count_request(other) - p1


def test_top_level_cache_control_marks_the_last_block(client):
    params = prompts.build_params(spec(), [(1, "x")], cache=False)
    usage = client.messages.create(**params, cache_control={"type": "ephemeral"}).usage
    assert usage.cache_creation.ephemeral_5m_input_tokens == tokens.count_request(params)
    assert client.messages.create(**params, cache_control={"type": "ephemeral"}).usage.input_tokens == 0


def test_breakpoint_rules(client):
    base = params_for(["x"])
    five = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**{**base, "system": five})
    assert "maximum of 4" in raised.value.body["error"]["message"]
    client.messages.create(**{**base, "system": five[:4]})  # four is fine
    wrong_order = [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
        {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**base, "system": wrong_order})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**base, "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]})


def test_in_a_batch_the_first_request_writes_and_the_others_read(client):
    requests = [
        {"custom_id": f"c{i}", "params": prompts.build_params(spec(), [(1, f"review {i}")], cache=True)}
        for i in range(5)
    ]
    prefix = prefix_tokens(requests[0]["params"])
    batch = client.messages.batches.create(requests=requests)
    wait_ended(client, batch.id)
    usage = {k: r.message.usage for k, r in results_by_id(client, batch.id).items()}
    assert usage["c0"].cache_creation_input_tokens == prefix and usage["c0"].cache_read_input_tokens == 0
    for i in range(1, 5):
        assert usage[f"c{i}"].cache_read_input_tokens == prefix
        assert usage[f"c{i}"].cache_creation_input_tokens == 0
    assert {u.service_tier for u in usage.values()} == {"batch"}


def test_count_tokens_ignores_the_cache(client):
    params = prompts.build_params(spec(), [(1, "x")], cache=True)
    client.messages.create(**params)
    count = client.messages.count_tokens(
        model=params["model"], system=params["system"], messages=params["messages"],
        output_config=params["output_config"],
    )
    assert count.input_tokens == tokens.count_request(params)


@pytest.mark.parametrize(
    "params",
    [
        params_for(["a", "b"]),
        # Tool output mode (claude-sonnet-4-0, which resolved to it, is retired and gone from the catalog).
        prompts.build_params(prompts.PromptSpec(model="claude-haiku-4-5", instructions="x", labels=SPEC.labels, output_mode="tool"), [(1, "y")], cache=True),
        {
            "model": "claude-opus-4-6",
            "max_tokens": 10,
            "system": "plain system text",
            "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "done"}]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}},
                ]},
            ],
        },
    ],
    ids=["json-schema", "tool", "multi-turn"],
)
# Also on the Claude 4.7+ tokenizer (ratio 1.3 [H55]): scaled part by part, the sum still matches.
@pytest.mark.parametrize("model", [None, "claude-haiku-5-5"], ids=["own-model", "tokenizer-4.7"])
def test_part_by_part_total_equals_the_counter(params, model):
    if model is not None:
        params = {**params, "model": model}
        assert catalog.model_info(model).tokenizer_ratio != 1.0
    assert request_tokens(params).total == tokens.count_request(params)
