"""The real-time path against the emulator: real SDK, real HTTP, nothing mocked.

Pacing tests run on the emulator's virtual clock (``Limits(clock=..., sleep=...)``: waiting
advances the emulator's clock instead of sleeping), so minutes of rate-limit windows take no wall
time. One slow test does the same on real time. No test asserts on wall time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from claude_batch import prompts, realtime, tokens

SPEC = prompts.PromptSpec(
    model="claude-haiku-4-5",
    instructions="Classify the sentiment of each customer review.",
    labels=(prompts.Label("positive"), prompts.Label("negative")),
)

POSITIVE = ["I love this kettle, it is excellent", "Great service, would recommend", "Wonderful and fast"]
NEGATIVE = ["Terrible, it broke after a day", "Awful support, total waste", "Worst purchase, defective junk"]


def _requests(n: int, rows_per_request: int = 2) -> list[tuple[str, dict]]:
    texts = POSITIVE + NEGATIVE
    out = []
    for i in range(n):
        rows = [(j + 1, texts[(i + j) % len(texts)] + f" #{i}") for j in range(rows_per_request)]
        out.append((f"req-{i:04d}", prompts.build_params(SPEC, rows, cache=False)))
    return out


def _virtual_time(emu):
    """Limits' clock = the emulator's virtual clock; waiting moves it forward instead of sleeping."""

    def clock() -> float:
        return emu.now().timestamp()

    async def sleep(seconds: float) -> None:
        emu.advance_clock(seconds)
        await asyncio.sleep(0)

    return {"clock": clock, "sleep": sleep}


def _run(emu, requests, limits, **client_options):
    async def go():
        client = realtime.make_client(limits, base=emu.client(**client_options))
        try:
            return await realtime.answer_all(client, requests, limits)
        finally:
            await client.close()

    return asyncio.run(go())


def _message_posts(emu) -> int:
    return emu.stats()["calls"].get("POST /v1/messages", 0)


def _admitted(emu) -> list[dict]:
    return [e for e in emu.received() if e["batch"] == "messages"]


def _rejected_429(emu) -> int:
    """The emulator's own count of /v1/messages calls it turned away before admitting them."""
    return _message_posts(emu) - len(_admitted(emu))


def _max_in_any_minute(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    best = 0
    for i, t in enumerate(stamps):
        best = max(best, sum(1 for s in stamps[: i + 1] if s > t - 60.0))
    return best


def _at(entry: dict) -> float:
    return datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()


@pytest.fixture
def api_env(emulator, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", emulator.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.base_url)
    return emulator


# ---------------------------------------------------------------------------- answers


def test_answers_come_back_in_order_with_the_right_labels(emulator):
    emulator.script({"scripted happy row": "positive", "scripted sad row": "negative"})
    rows = [(1, "scripted happy row"), (2, "scripted sad row"), (3, "I love it, excellent")]
    requests = [(f"r{i}", prompts.build_params(SPEC, rows, cache=False)) for i in range(7)]
    answers = _run(emulator, requests, realtime.Limits())

    assert [a[0] for a in answers] == [cid for cid, _ in requests]
    for custom_id, result_type, message, error in answers:
        assert (result_type, error) == ("succeeded", None)
        outcomes, _ = prompts.parse_answer(SPEC, message["content"], [1, 2, 3])
        assert [(o.status, o.labels) for o in outcomes] == [
            ("succeeded", ("positive",)), ("succeeded", ("negative",)), ("succeeded", ("positive",)),
        ]
        assert message["usage"]["service_tier"] == "standard"
        assert message["usage"]["input_tokens"] > 0
    assert len(_admitted(emulator)) == 7


def test_iter_answers_yields_every_request_once(emulator):
    requests = _requests(12)

    async def go():
        limits = realtime.Limits(concurrency=3)
        client = realtime.make_client(limits, base=emulator.client())
        try:
            return [a async for a in realtime.iter_answers(client, requests, limits)]
        finally:
            await client.close()

    got = asyncio.run(go())
    assert sorted(a[0] for a in got) == [cid for cid, _ in requests]
    assert {a[1] for a in got} == {"succeeded"}


def test_invalid_request_becomes_an_errored_row_not_an_exception(emulator):
    good = _requests(3)
    bad_params = dict(good[0][1], temperature=5.0)  # out of range: 400 invalid_request_error
    requests = [good[0], ("bad-one", bad_params), good[1], ("bad-model", dict(good[2][1], model="claude-nope-9"))]
    answers = dict((a[0], a) for a in _run(emulator, requests, realtime.Limits()))

    assert answers[good[0][0]][1] == "succeeded"
    assert answers[good[1][0]][1] == "succeeded"
    _, result_type, message, error = answers["bad-one"]
    assert (result_type, message) == ("errored", None)
    assert error["error"]["type"] == "invalid_request_error"
    assert "temperature" in error["error"]["message"]
    assert answers["bad-model"][3]["error"]["type"] == "not_found_error"


# ---------------------------------------------------------------------------- pacing


def test_stays_under_the_emulators_rpm_without_a_single_429(emulator):
    emulator.set_faults(messages_rpm=5)
    limits = realtime.Limits(rpm=5, itpm=None, otpm=None, concurrency=4, **_virtual_time(emulator))
    requests = _requests(23)
    answers = _run(emulator, requests, limits)

    assert [a[1] for a in answers] == ["succeeded"] * 23
    assert _rejected_429(emulator) == 0
    assert limits.stats["rate_limited"] == 0
    assert limits.stats["waits"] > 0  # pacing did hold requests back
    # The emulator's own timestamps: never more than 5 admitted calls in any minute.
    assert _max_in_any_minute([_at(e) for e in _admitted(emulator)]) <= 5


def test_stays_under_input_and_output_token_limits(emulator):
    requests = _requests(18, rows_per_request=3)
    per_request_in = tokens.count_request(requests[0][1])
    max_tokens = requests[0][1]["max_tokens"]
    # Room for about three requests a minute of input, four of output.
    emulator.set_faults(messages_itpm=per_request_in * 3 + 10, messages_otpm=max_tokens * 4)
    limits = realtime.Limits(
        rpm=None, itpm=per_request_in * 3 + 10, otpm=max_tokens * 4, concurrency=8, **_virtual_time(emulator)
    )
    answers = _run(emulator, requests, limits)

    assert [a[1] for a in answers] == ["succeeded"] * 18
    assert _rejected_429(emulator) == 0
    assert limits.stats["waits"] > 0


def test_without_client_pacing_the_sdk_absorbs_429s(emulator):
    """Injected 429s (with retry-after) and a 500: the SDK retries them, none reaches the caller."""
    emulator.set_faults(http_errors=[
        {"status": 429, "count": 4, "path_prefix": "/v1/messages", "retry_after": 0.05},
        {"status": 500, "count": 1, "path_prefix": "/v1/messages"},
    ])
    limits = realtime.Limits(rpm=None, itpm=None, otpm=None, concurrency=2, max_retries=6)
    answers = _run(emulator, _requests(6), limits)

    assert [a[1] for a in answers] == ["succeeded"] * 6
    calls = emulator.stats()["calls"]
    assert calls.get("fault:http_429") == 4
    assert calls.get("fault:http_500") == 1
    assert limits.stats["rate_limited"] == 4  # every 429 the SDK saw paused admissions


def test_rate_limit_rounds_continue_after_the_sdk_gives_up(emulator):
    # max_retries=1: the SDK makes 2 attempts; 3 rejections outlast it, our next round succeeds.
    emulator.set_faults(http_errors=[{"status": 429, "count": 3, "path_prefix": "/v1/messages", "retry_after": 0.05}])
    limits = realtime.Limits(rpm=None, itpm=None, otpm=None, concurrency=1, max_retries=1, rate_limit_rounds=2)
    answers = _run(emulator, _requests(1), limits, max_retries=1)
    assert answers[0][1] == "succeeded"


def test_persistent_429_becomes_a_retryable_errored_row(emulator):
    emulator.set_faults(http_errors=[{"status": 429, "count": 50, "path_prefix": "/v1/messages", "retry_after": 0.01}])
    limits = realtime.Limits(rpm=None, itpm=None, otpm=None, concurrency=1, max_retries=0, rate_limit_rounds=1)
    answers = _run(emulator, _requests(1), limits, max_retries=0)
    _, result_type, _, error = answers[0]
    assert result_type == "errored"
    assert error["error"]["type"] == "rate_limit_error"


def test_a_request_bigger_than_the_itpm_limit_still_goes_once_alone(emulator):
    requests = _requests(2)
    limits = realtime.Limits(rpm=None, itpm=10, otpm=None, **_virtual_time(emulator))
    answers = _run(emulator, requests, limits)
    assert [a[1] for a in answers] == ["succeeded", "succeeded"]


@pytest.mark.slow
def test_real_time_pacing_under_rpm(emulator):
    """The default (real) clock: 5 requests at 3 RPM need a second minute; no 429 on the way."""
    emulator.set_faults(messages_rpm=3)
    limits = realtime.Limits(rpm=3, itpm=None, otpm=None, concurrency=5)
    answers = _run(emulator, _requests(5), limits)
    assert [a[1] for a in answers] == ["succeeded"] * 5
    assert _rejected_429(emulator) == 0
    assert limits.stats["waits"] > 0
    assert _max_in_any_minute([_at(e) for e in _admitted(emulator)]) <= 3


# ---------------------------------------------------------------------------- client


def test_make_client_reads_key_and_url_from_the_environment(api_env):
    limits = realtime.Limits()

    async def go():
        client = realtime.make_client(limits)
        try:
            return await realtime.answer_all(client, _requests(2), limits)
        finally:
            await client.close()

    assert [a[1] for a in asyncio.run(go())] == ["succeeded", "succeeded"]


def test_make_client_without_a_key_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    from claude_batch.client import MissingApiKeyError

    with pytest.raises(MissingApiKeyError, match="ANTHROPIC_API_KEY"):
        realtime.make_client(realtime.Limits())
