"""The shared token counter: tokenizer generations [H55; REF §2], ratio from the catalog."""

from __future__ import annotations

import pytest

from claude_batch import catalog, tokens


@pytest.mark.parametrize(
    "count, ratio, expected",
    [(0, 1.3, 0), (1, 1.3, 2), (3, 1.3, 4), (10, 1.3, 13), (100, 1.3, 130), (101, 1.3, 132), (7, 1.0, 7)],
)
def test_scale_rounds_up_exactly(count, ratio, expected):
    assert tokens.scale(count, ratio) == expected


def test_ratio_comes_from_the_catalog():
    for name in catalog.MODELS:
        assert tokens.tokenizer_ratio(name) == catalog.model_info(name).tokenizer_ratio
    assert tokens.tokenizer_ratio("claude-haiku-4-5-20251001") == 1.0  # an alias
    assert tokens.tokenizer_ratio("no-such-model") == 1.0
    assert tokens.tokenizer_ratio(None) == 1.0


def test_count_request_is_per_model_and_per_part():
    params = {
        "system": [{"type": "text", "text": "Classify each row."}, {"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "<r1>great</r1>"}, {"type": "text", "text": "x"}]}],
    }
    base = tokens.count_request(params)
    assert tokens.count_request({**params, "model": "claude-haiku-4-5"}) == base
    parts = [
        tokens.REQUEST_OVERHEAD_TOKENS,
        tokens.count_text("Classify each row."),
        tokens.count_text("Be brief."),
        tokens.MESSAGE_OVERHEAD_TOKENS,
        tokens.count_text("<r1>great</r1>"),
        tokens.count_text("x"),
    ]
    assert base == sum(parts)
    assert tokens.count_request({**params, "model": "claude-haiku-5-5"}) == sum(tokens.scale(p, 1.3) for p in parts)


def test_model_text():
    text = "The parcel arrived two weeks late and the lid was cracked."
    assert tokens.count_model_text(text, "claude-haiku-4-5") == tokens.count_text(text)
    assert tokens.count_model_text(text, "claude-haiku-5-5") == tokens.scale(tokens.count_text(text), 1.3)
