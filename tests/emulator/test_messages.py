"""POST /v1/messages and /v1/messages/count_tokens through the real SDK."""

from __future__ import annotations

import json

import anthropic
import httpx2
import jsonschema
import pytest
from anthropic.types import Message, MessageTokensCount

from claude_batch import prompts, tokens
from conftest import SPEC, TOOL_SPEC, params_for


def test_default_answer_is_plausible_and_parsed_by_sdk_types(client):
    params = params_for(["I love it", "It broke after two days, terrible", "The box is blue"])
    message = client.messages.create(**params)

    assert isinstance(message, Message)
    assert message.id.startswith("msg_")
    assert message.role == "assistant" and message.type == "message"
    assert message.model == SPEC.model
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.service_tier == "standard"
    outcomes, _ = prompts.parse_answer(SPEC, [b.model_dump() for b in message.content], [1, 2, 3])
    assert [(o.item_id, o.status, o.labels) for o in outcomes] == [
        (1, "succeeded", ("positive",)),
        (2, "succeeded", ("negative",)),
        (3, "succeeded", ("neutral",)),
    ]


def test_json_schema_output_is_honoured(client):
    params = params_for(["great value", "awful"])
    message = client.messages.create(**params)
    [block] = message.content
    assert block.type == "text"
    jsonschema.validate(json.loads(block.text), params["output_config"]["format"]["schema"])


def test_forced_tool_returns_tool_use_following_input_schema(client):
    params = params_for(
        ["I was charged twice, please refund the invoice", "The parcel arrived late, broken and defective"],
        TOOL_SPEC,
    )
    message = client.messages.create(**params)

    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.name == prompts.TOOL_NAME and block.id.startswith("toolu_")
    jsonschema.validate(block.input, params["tools"][0]["input_schema"])
    outcomes, _ = prompts.parse_answer(TOOL_SPEC, [block.model_dump()], [1, 2])
    assert outcomes[0].labels == ("billing",)
    assert set(outcomes[1].labels) == {"shipping", "quality"}  # multi-label


def test_generic_forced_tool_with_enum_and_label_array(client):
    tool = {
        "name": "tag",
        "input_schema": {
            "type": "object",
            "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                "topics": {"type": "array", "items": {"type": "string", "enum": ["price", "delivery"]}},
                "confidence": {"type": "number"},
            },
            "required": ["sentiment", "topics"],
        },
    }
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=[{"role": "user", "content": "Terrible delivery, it was the worst"}],
        tools=[tool],
        tool_choice={"type": "tool", "name": "tag"},
    )
    [block] = message.content
    jsonschema.validate(block.input, tool["input_schema"])
    assert block.input["sentiment"] == "negative"
    assert block.input["topics"] == ["delivery"]


def test_answers_are_deterministic(client):
    params = params_for(["fine I guess", "best purchase ever"])
    first = client.messages.create(**params)
    second = client.messages.create(**params)
    assert first.content == second.content and first.usage == second.usage
    assert first.id != second.id


def test_usage_counts_with_the_documented_counter(client):
    params = params_for(["I love it"])
    message = client.messages.create(**params)
    assert message.usage.input_tokens == tokens.count_request(params)
    assert message.usage.output_tokens == tokens.count_text(message.content[0].text)
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_count_tokens_matches_the_counter(client):
    params = params_for(["I love it", "meh"])
    count = client.messages.count_tokens(
        model=params["model"], messages=params["messages"], system=params["system"],
        output_config=params["output_config"],
    )
    assert isinstance(count, MessageTokensCount)
    expected = {k: params[k] for k in ("model", "messages", "system", "output_config")}
    assert count.input_tokens == tokens.count_request(expected)


def test_max_tokens_cuts_the_answer(client):
    params = params_for(["good", "bad", "fine", "great", "awful"])
    params["max_tokens"] = 5
    message = client.messages.create(**params)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens <= 5
    full = client.messages.create(**{**params, "max_tokens": 500}).content[0].text
    assert full.startswith(message.content[0].text) and full != message.content[0].text


def test_max_tokens_zero_prewarms_without_output(client):
    message = client.messages.create(**{**params_for(["hello"]), "max_tokens": 0})
    assert message.content == [] and message.usage.output_tokens == 0


def test_plain_text_request(client):
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"


def test_scripted_answers_cover_every_directive(emulator, client):
    emulator.script(
        {
            "row scripted": "negative",
            "row missing": {"omit": True},
            "row outside": {"label": "not-a-label"},
            "row both": ["positive", "negative"],
        }
    )
    texts = ["row scripted", "row missing", "row outside", "row both", "I love it"]
    message = client.messages.create(**params_for(texts))
    outcomes, _ = prompts.parse_answer(SPEC, [b.model_dump() for b in message.content], [1, 2, 3, 4, 5])
    by_id = {o.item_id: o for o in outcomes}
    assert by_id[1].status == "succeeded" and by_id[1].labels == ("negative",)
    assert by_id[2].status == "missing"
    assert by_id[3].status == "invalid_output"  # out-of-set label
    assert by_id[4].status == "invalid_output"  # two labels for a single-label classifier
    assert by_id[5].labels == ("positive",)  # unscripted rows keep the heuristic


def test_scripted_raw_answer_is_malformed_output(emulator, client):
    emulator.script({"break me": {"raw": "Sorry, I cannot answer that."}})
    message = client.messages.create(**params_for(["break me", "I love it"]))
    assert message.content[0].text == "Sorry, I cannot answer that."
    outcomes, raw = prompts.parse_answer(SPEC, [b.model_dump() for b in message.content], [1, 2])
    assert {o.status for o in outcomes} == {"invalid_output"}


def test_script_through_the_control_endpoint(emulator, client):
    response = httpx2.post(f"{emulator.base_url}/_emulator/script", json={"answers": {"odd row": "neutral"}})
    assert response.status_code == 200
    assert httpx2.get(f"{emulator.base_url}/_emulator/script").json()["answers"] == {"odd row": "neutral"}
    message = client.messages.create(**params_for(["odd row"]))
    assert json.loads(message.content[0].text) == {"groups": [{"label": "neutral", "ids": [1]}]}
    bad = httpx2.post(f"{emulator.base_url}/_emulator/script", json={"answers": {"x": {"what": 1}}})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_responder_hook(emulator, client):
    seen = []

    def responder(text, labels, params):
        seen.append((text, labels))
        return "neutral" if "hook" in text else None

    emulator.set_responder(responder)
    message = client.messages.create(**params_for(["hook me", "I love it"]))
    outcomes, _ = prompts.parse_answer(SPEC, [b.model_dump() for b in message.content], [1, 2])
    assert [o.labels for o in outcomes] == [("neutral",), ("positive",)]
    assert seen[0] == ("hook me", ("positive", "negative", "neutral"))
    emulator.set_responder(None)


def test_received_log_records_messages_calls(emulator, client):
    client.messages.create(**params_for(["first row", "second row"]))
    [entry] = emulator.received()
    assert entry["batch"] == "messages" and entry["custom_id"] is None
    assert entry["rows"] == ["first row", "second row"] and entry["model"] == SPEC.model
    lines = httpx2.get(f"{emulator.base_url}/_emulator/received").text.splitlines()
    assert [json.loads(line) for line in lines] == [entry]


def test_row_text_is_unescaped_and_packed_rows_all_answered(client):
    texts = [f"review <{i}> & more: {'great' if i % 2 else 'awful'}" for i in range(1, 21)]
    message = client.messages.create(**params_for(texts))
    outcomes, _ = prompts.parse_answer(SPEC, [b.model_dump() for b in message.content], list(range(1, 21)))
    assert all(o.status == "succeeded" for o in outcomes)
    assert [o.labels[0] for o in outcomes] == ["positive" if i % 2 else "negative" for i in range(1, 21)]


def test_streaming_is_refused_with_an_error(client):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**params_for(["x"]), stream=True)
    assert raised.value.body["error"]["type"] == "invalid_request_error"
