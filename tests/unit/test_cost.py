import pytest

from claude_batch import cost


def test_batch_and_cache_multipliers_sonnet():
    u = cost.Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_write_1h_tokens=1_000_000,
                   cache_read_tokens=1_000_000, service_tier="batch")
    # input 1.50 + output 7.50 + 1h write 1.50*2 + read 1.50*0.1
    assert cost.billed_usd("claude-sonnet-4-5", u) == pytest.approx(1.5 + 7.5 + 3.0 + 0.15)
    assert cost.naive_usd("claude-sonnet-4-5", u) == pytest.approx(3 * 3.0 + 15.0)


def test_from_api_usage_dict():
    u = cost.Usage.from_api({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 100,
                             "cache_read_input_tokens": 0,
                             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100},
                             "service_tier": "batch"})
    assert u.cache_write_1h_tokens == 100 and u.total_input_tokens == 110 and u.service_tier == "batch"


def test_cache_plan_short_prefix_warns_with_gap():
    plan = cost.cache_plan("claude-haiku-4-5", 2000, expected_requests=100, batch=True)
    assert not plan.mark and "2096 short" in plan.message and "4096" in plan.message
    assert cost.cache_plan("claude-sonnet-4-5", 2000, expected_requests=100, batch=True).mark
