"""Tokenizer generations, through the real SDK over HTTP.

Fact [H55; REF §2]: Claude 4.7 and later (incl. Haiku 5.5) count the same text as about 30 % more
tokens than Haiku 4.5. The ratio is data (models.json ``tokenizers``, ``catalog.model_info(m).tokenizer_ratio``);
the emulator and the local estimates use the one counter, ``claude_batch.tokens``.
"""

from __future__ import annotations

import pytest

from claude_batch import catalog, prompts, tokens
from claude_batch.emulator.usage import request_tokens

OLD, NEW = "claude-haiku-4-5", "claude-haiku-5-5"
SYSTEM = "Classify the sentiment of each customer review.\n\nLabels:\n- positive: happy\n- negative: unhappy\n- neutral: neither\n"
TEXTS = [
    "I love this blender, it crushes ice in seconds and is easy to clean afterwards.",
    "The parcel arrived two weeks late and the lid was cracked. Very disappointed with the seller.",
    "It is a blender. It blends things. Nothing more to say about it, really.",
] * 4


def params(model: str, *, cache: bool = False) -> dict:
    system = {"type": "text", "text": SYSTEM * 30}
    if cache:
        system["cache_control"] = {"type": "ephemeral", "ttl": "5m"}
    return {
        "model": model,
        "max_tokens": 4000,
        "system": [system],
        "messages": [{"role": "user", "content": prompts.render_rows(list(enumerate(TEXTS, start=1)))}],
        # Haiku 5.5 thinks by default; off here so both answers are text only (effort <= high [H55P]).
        **({"thinking": {"type": "disabled"}, "output_config": {"effort": "low"}} if model == NEW else {}),
    }


@pytest.fixture
def sdk(emulator):
    with emulator.client(max_retries=0) as client:
        yield client


def test_catalog_ratios():
    assert catalog.model_info(OLD).tokenizer_ratio == 1.0
    assert catalog.model_info(NEW).tokenizer_ratio == 1.3
    assert tokens.tokenizer_ratio(NEW) == 1.3 and tokens.tokenizer_ratio("claude-unknown-9") == 1.0


def test_count_tokens_of_the_same_request_is_about_1_3_times_on_the_new_tokenizer(sdk):
    old = sdk.messages.count_tokens(model=OLD, system=params(OLD)["system"], messages=params(OLD)["messages"])
    new = sdk.messages.count_tokens(model=NEW, system=params(NEW)["system"], messages=params(NEW)["messages"])
    assert old.input_tokens == tokens.count_request({"model": OLD, **{k: params(OLD)[k] for k in ("system", "messages")}})
    assert new.input_tokens == tokens.count_request({"model": NEW, **{k: params(NEW)[k] for k in ("system", "messages")}})
    # Rounding up per part makes it a little more than 1.3 on short parts.
    assert 1.29 <= new.input_tokens / old.input_tokens <= 1.32


def test_messages_usage_follows_the_models_tokenizer(sdk):
    old = sdk.messages.create(**params(OLD))
    new = sdk.messages.create(**params(NEW))
    assert old.usage.input_tokens == tokens.count_request(params(OLD))
    assert new.usage.input_tokens == tokens.count_request(params(NEW))
    assert 1.29 <= new.usage.input_tokens / old.usage.input_tokens <= 1.32
    # Output text is counted with the same model's ratio.
    assert old.content[0].text == new.content[0].text
    assert old.usage.output_tokens == tokens.count_model_text(old.content[0].text, OLD)
    assert new.usage.output_tokens == tokens.count_model_text(new.content[0].text, NEW)
    assert new.usage.output_tokens == tokens.scale(old.usage.output_tokens, 1.3)


def test_cache_prefix_is_counted_with_the_models_tokenizer(sdk):
    first = sdk.messages.create(**params(NEW, cache=True)).usage
    second = sdk.messages.create(**params(NEW, cache=True)).usage
    prefix = tokens.count_request({"model": NEW, "system": params(NEW)["system"]})
    assert first.cache_creation_input_tokens == prefix
    assert second.cache_read_input_tokens == prefix
    assert second.input_tokens + second.cache_read_input_tokens == tokens.count_request(params(NEW))


@pytest.mark.parametrize("model", [OLD, NEW, "claude-sonnet-5-5", "claude-opus-4-7", "claude-unknown-9"])
def test_part_by_part_total_equals_the_counter_for_every_tokenizer(model):
    request = {
        **params(NEW, cache=True),
        "model": model,
        "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    counted = request_tokens(request)
    assert counted.total == tokens.count_request(request)
    ratio = tokens.tokenizer_ratio(model)
    base = request_tokens({**request, "model": OLD})
    assert [p.tokens for p in counted.parts] == [tokens.scale(p.tokens, ratio) for p in base.parts]
