"""Retired models and settings a model refuses, through the real SDK over HTTP. Facts come from
_data/models.json (catalog); the rules' sources are cited in emulator/validation.py."""

from __future__ import annotations

import warnings

import anthropic
import pytest

from claude_batch import catalog
from conftest import results_by_id

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}},
    "required": ["label"],
    "additionalProperties": False,
}
TOOL = {"name": "classify", "input_schema": SCHEMA}
HELLO = [{"role": "user", "content": "I love it"}]


def ask(model: str, **extra) -> dict:
    return {"model": model, "max_tokens": 2000, "messages": HELLO, **extra}


def error_of(raised) -> dict:
    body = raised.value.body
    assert body["type"] == "error" and body["request_id"].startswith("req_")
    return body["error"]


def refused(client, params: dict, status: int = 400) -> dict:
    kind = anthropic.BadRequestError if status == 400 else anthropic.NotFoundError
    with pytest.raises(kind) as raised:
        client.messages.create(**params)
    return error_of(raised)


@pytest.fixture(autouse=True)
def _quiet_sdk_deprecations():
    # The SDK warns (DeprecationWarning) for ids in its DEPRECATED_MODELS, e.g. claude-opus-4-5.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


# ---------------------------------------------------------------------------- retired models


def test_sonnet_4_5_works_before_its_retirement_and_fails_after(emulator, client):
    retires = catalog.model_info("claude-sonnet-4-5").retires_on
    assert retires.isoformat() == "2026-11-30"
    emulator.set_clock("2026-11-01T12:00:00Z")
    assert client.messages.create(**ask("claude-sonnet-4-5")).content
    assert client.messages.count_tokens(model="claude-sonnet-4-5", messages=HELLO).input_tokens > 0
    emulator.set_clock("2026-12-03T12:00:00Z")
    for model in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"):
        error = refused(client, ask(model), 404)
        assert error == {"type": "not_found_error", "message": f"model: {model}"}
        with pytest.raises(anthropic.NotFoundError) as raised:
            client.messages.count_tokens(model=model, messages=HELLO)
        assert error_of(raised) == {"type": "not_found_error", "message": f"model: {model}"}


def test_opus_4_5_works_today_and_fails_after_2027_01_22(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    assert client.messages.create(**ask("claude-opus-4-5")).content
    emulator.set_clock("2027-01-22T00:00:01Z")
    assert refused(client, ask("claude-opus-4-5"), 404)["message"] == "model: claude-opus-4-5"


def test_ids_known_only_as_retired_and_unknown_ids_are_404(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    assert catalog.retired_model("claude-opus-4-1") is not None
    for model in ("claude-opus-4-1", "claude-3-5-haiku-latest", "claude-nonexistent-9"):
        assert refused(client, ask(model), 404) == {"type": "not_found_error", "message": f"model: {model}"}


def test_retired_model_in_a_batch_is_an_errored_not_found_line(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    batch = client.messages.batches.create(
        requests=[
            {"custom_id": "retired", "params": ask("claude-sonnet-4-5")},
            {"custom_id": "fine", "params": ask("claude-sonnet-4-6")},
        ]
    )
    assert emulator.wait_idle()
    results = results_by_id(client, batch.id)
    assert results["fine"].type == "succeeded"
    assert results["retired"].type == "errored"
    assert results["retired"].error.error.type == "not_found_error"
    assert results["retired"].error.error.message == "model: claude-sonnet-4-5"


# ---------------------------------------------------------------------------- thinking


def test_thinking_types_a_model_refuses(client):
    # [O55] Opus 5.5: thinking cannot be turned off; the API's own wording.
    error = refused(client, ask("claude-opus-5-5", thinking={"type": "disabled"}))
    assert error == {"type": "invalid_request_error", "message": '"thinking.type.disabled" is not supported for this model.'}
    assert refused(client, ask("claude-opus-5-5", thinking={"type": "enabled", "budget_tokens": 1024}))["message"] == (
        '"thinking.type.enabled" is not supported for this model.'
    )
    # [S55] Sonnet 5.5: disabled refused (between_tools is the way); Haiku 5.5 has no between_tools.
    refused(client, ask("claude-sonnet-5-5", thinking={"type": "disabled"}))
    refused(client, ask("claude-haiku-5-5", thinking={"type": "between_tools"}))
    # [H55] 5.x: enabled + budget_tokens refused.
    refused(client, ask("claude-haiku-5-5", thinking={"type": "enabled", "budget_tokens": 1024}))
    # Not a thinking type at all.
    assert "thinking.type" in refused(client, ask("claude-haiku-5-5", thinking={"type": "sometimes"}))["message"]
    # Adaptive is accepted everywhere the data says so.
    client.messages.create(**ask("claude-opus-5-5", thinking={"type": "adaptive"}))


def test_enabled_thinking_needs_a_budget_on_4x_models(client):
    assert "budget_tokens" in refused(client, ask("claude-haiku-4-5", thinking={"type": "enabled"}))["message"]
    client.messages.create(**ask("claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 1024}))
    # Haiku 4.5 has no adaptive thinking (models.json thinking.types).
    refused(client, ask("claude-haiku-4-5", thinking={"type": "adaptive"}))


def test_thinking_off_only_up_to_an_effort(client):
    # [H55P] Haiku 5.5: disabled only at effort low/medium/high.
    for level in ("low", "medium", "high"):
        client.messages.create(**ask("claude-haiku-5-5", thinking={"type": "disabled"}, output_config={"effort": level}))
    for level in ("xhigh", "max"):
        error = refused(client, ask("claude-haiku-5-5", thinking={"type": "disabled"}, output_config={"effort": level}))
        assert error["type"] == "invalid_request_error" and "effort" in error["message"]
    # [S55] Sonnet 5.5: between_tools at low/medium/high only.
    refused(client, ask("claude-sonnet-5-5", thinking={"type": "between_tools"}, output_config={"effort": "max"}))
    # Omitted effort is the model's default (Haiku 5.5: medium), allowed with thinking off.
    client.messages.create(**ask("claude-haiku-5-5", thinking={"type": "disabled"}))


# ---------------------------------------------------------------------------- effort


def test_effort_values_and_support(client):
    error = refused(client, ask("claude-haiku-4-5", output_config={"effort": "low"}))
    assert error["type"] == "invalid_request_error" and "effort" in error["message"]
    assert "output_config.effort" in refused(client, ask("claude-haiku-5-5", output_config={"effort": "extreme"}))["message"]
    for level in catalog.EFFORT_LEVELS:
        client.messages.create(**ask("claude-opus-5-5", output_config={"effort": level}))


# ---------------------------------------------------------------------------- forced tool use


def test_forced_tool_use_refused_where_the_model_refuses_it(client):
    for model in ("claude-opus-5-5", "claude-sonnet-5-5"):  # [O55][S55]
        for choice in ({"type": "tool", "name": "classify"}, {"type": "any"}):
            error = refused(client, ask(model, tools=[TOOL], tool_choice=choice))
            assert error["type"] == "invalid_request_error" and "tool_choice" in error["message"]
        client.messages.create(**ask(model, tools=[TOOL], tool_choice={"type": "auto"}))


def test_forced_tool_use_refused_while_thinking(client):
    forced = {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "classify"}}
    message = "Thinking may not be enabled when tool_choice forces tool use."
    # [TTW] Haiku 5.5 thinks by default (adaptive): forcing a tool without turning thinking off fails...
    assert refused(client, ask("claude-haiku-5-5", **forced))["message"] == message
    # ...and works with thinking disabled.
    answer = client.messages.create(**ask("claude-haiku-5-5", thinking={"type": "disabled"}, **forced))
    assert any(block.type == "tool_use" for block in answer.content)
    # Models that do not think by default: explicit thinking is the problem.
    assert refused(client, ask("claude-sonnet-4-6", thinking={"type": "adaptive"}, **forced))["message"] == message
    client.messages.create(**ask("claude-sonnet-4-6", **forced))


# ---------------------------------------------------------------------------- prefill


def test_assistant_prefill_refused_on_5x_models(client):
    prefilled = HELLO + [{"role": "assistant", "content": "{"}]
    for model in ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5", "claude-fable-5-2", "claude-mythos-5-2"):
        error = refused(client, {"model": model, "max_tokens": 2000, "messages": prefilled})
        assert error["type"] == "invalid_request_error" and "prefill" in error["message"], model
    for model in ("claude-sonnet-4-6", "claude-opus-4-5", "claude-haiku-4-5"):
        client.messages.create(model=model, max_tokens=2000, messages=prefilled)


# ---------------------------------------------------------------------------- what the product sends


def product_params(model: str) -> dict:
    """The request shape our classifier sends per model (REF §3 "cheapest thinking")."""
    params = {
        "model": model,
        "max_tokens": 4000,
        "system": [{"type": "text", "text": "Classify the sentiment. Labels:\n- positive\n- negative"}],
        "messages": [{"role": "user", "content": "<r1>I love it</r1>"}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    }
    if model == "claude-haiku-5-5":
        params["thinking"] = {"type": "disabled"}
        params["output_config"]["effort"] = "low"
    elif model == "claude-sonnet-5-5":
        params["thinking"] = {"type": "between_tools"}
        params["output_config"]["effort"] = "low"
    elif model == "claude-opus-5-5":
        params["output_config"]["effort"] = "low"
    return params


PRODUCT_MODELS = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-sonnet-4-6",
                  "claude-opus-4-6", "claude-opus-4-5", "claude-haiku-4-5")


@pytest.mark.parametrize("model", PRODUCT_MODELS)
def test_the_products_requests_are_accepted(client, model):
    message = client.messages.create(**product_params(model))
    assert message.stop_reason in ("end_turn", "max_tokens")
    client.messages.count_tokens(
        **{k: v for k, v in product_params(model).items() if k != "max_tokens"}
    )


def test_the_products_requests_are_accepted_in_a_batch(emulator, client):
    batch = client.messages.batches.create(
        requests=[{"custom_id": model.replace(".", "_"), "params": product_params(model)} for model in PRODUCT_MODELS]
    )
    assert emulator.wait_idle()
    results = results_by_id(client, batch.id)
    assert {custom_id: r.type for custom_id, r in results.items()} == {m: "succeeded" for m in PRODUCT_MODELS}
