"""anthropic-version picks the rules (emulator/versions.py, rules from _data/models.json), through
the real SDK over HTTP: SDK 2.x sends 2026-10-21; 2023-06-01 is pinned with extra_headers [REF §1]."""

from __future__ import annotations

import json

import anthropic
import pytest

from claude_batch import catalog
from claude_batch.emulator import versions, worker
from conftest import params_for, results_by_id, wait_ended

OLD = {"anthropic-version": "2023-06-01"}
NEW_MODEL = "claude-haiku-5-5"  # tokenizer claude-4.7: non-default sampling refused under 2023-06-01
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."}}
CITATIONS = [
    {"type": "char_location", "cited_text": "The sky", "document_index": 0, "document_title": None,
     "start_char_index": 0, "end_char_index": 7}
]


def plain(model: str = "claude-sonnet-4-6", **extra) -> dict:
    return {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "Hello there"}], **extra}


def error_of(raised) -> dict:
    body = raised.value.body
    assert body["type"] == "error" and body["request_id"].startswith("req_")
    return body["error"]


def test_the_sdk_sends_the_default_version():
    from anthropic._constants import ANTHROPIC_API_VERSION

    assert ANTHROPIC_API_VERSION == catalog.DEFAULT_API_VERSION == "2026-10-21"


def test_version_rules_are_all_implemented():
    """A rule added to models.json that versions.py does not know must not be silently ignored."""
    for version in catalog.api_versions():
        unknown = set(catalog.api_version_rules(version)) - versions.RULE_KEYS - versions.INFO_KEYS
        assert not unknown, (version, unknown)


# ---------------------------------------------------------------------------- 2026-10-21


@pytest.mark.parametrize(
    "key, value", [("temperature", 0.0), ("temperature", 1.0), ("top_p", 0.9), ("top_k", 5)],
    ids=["temperature-0", "temperature-default", "top_p", "top_k"],
)
def test_sampling_params_are_refused_even_at_default_values(client, key, value):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**plain(), extra_body={key: value})
    error = error_of(raised)
    assert error == {"type": "invalid_request_error", "message": f"{key}: Extra inputs are not permitted"}
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.count_tokens(
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}], extra_body={key: value}
        )
    assert error_of(raised)["type"] == "invalid_request_error"
    client.messages.create(**plain())  # omitted: default sampling, fine


def test_assistant_document_block_is_refused(client):
    messages = [
        {"role": "user", "content": "Read this."},
        {"role": "assistant", "content": [DOCUMENT]},
        {"role": "user", "content": "What colour is the sky?"},
    ]
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=messages)
    error = error_of(raised)
    assert error["type"] == "invalid_request_error" and "document" in error["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="claude-sonnet-4-6", messages=messages)
    # A document in a user message is fine.
    client.messages.create(
        model="claude-sonnet-4-6", max_tokens=50,
        messages=[{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "Colour?"}]}],
    )
    # Pinned to 2023-06-01, the assistant document is accepted.
    client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=messages, extra_headers=OLD)


def test_user_text_with_citations_is_refused(client):
    cited = [{"role": "user", "content": [{"type": "text", "text": "The sky is blue.", "citations": CITATIONS}]}]
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=cited)
    error = error_of(raised)
    assert error["type"] == "invalid_request_error" and "citations" in error["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="claude-sonnet-4-6", messages=cited)
    # Empty citations are not "non-empty citations".
    client.messages.create(
        model="claude-sonnet-4-6", max_tokens=50,
        messages=[{"role": "user", "content": [{"type": "text", "text": "x", "citations": []}]}],
    )
    client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=cited, extra_headers=OLD)


# ---------------------------------------------------------------------------- 2023-06-01


def test_pinned_old_version_accepts_sampling_on_older_models(client):
    message = client.messages.create(
        **plain(), extra_body={"temperature": 0.0, "top_p": 0.5, "top_k": 3}, extra_headers=OLD
    )
    assert message.content[0].text
    count = client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}], extra_headers=OLD
    )
    assert count.input_tokens > 0


def test_pinned_old_version_refuses_non_default_sampling_on_new_models(client):
    assert catalog.model_info(NEW_MODEL).tokenizer == "claude-4.7"
    client.messages.create(**plain(NEW_MODEL), extra_body={"temperature": 1.0}, extra_headers=OLD)
    for extra in ({"temperature": 0.0}, {"temperature": 0.5}, {"top_p": 0.9}, {"top_k": 10}):
        with pytest.raises(anthropic.BadRequestError) as raised:
            client.messages.create(**plain(NEW_MODEL), extra_body=extra, extra_headers=OLD)
        error = error_of(raised)
        [key] = extra
        assert error["type"] == "invalid_request_error" and error["message"].startswith(f"{key}: ")
    # Every model of the 4.7 generation and later, e.g. Opus 4.7 as well.
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**plain("claude-opus-4-7"), extra_body={"temperature": 0.2}, extra_headers=OLD)


# ---------------------------------------------------------------------------- the header itself


def test_missing_version_header_is_400(client):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**plain(), extra_headers={"anthropic-version": anthropic.Omit()})
    error = error_of(raised)
    assert error["type"] == "invalid_request_error" and "anthropic-version" in error["message"]
    assert "required" in error["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.list(extra_headers={"anthropic-version": anthropic.Omit()})
    with pytest.raises(anthropic.BadRequestError):
        client.models.list(extra_headers={"anthropic-version": anthropic.Omit()})


def test_unknown_version_is_400_naming_it(client):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**plain(), extra_headers={"anthropic-version": "2099-01-01"})
    error = error_of(raised)
    assert error["type"] == "invalid_request_error" and "2099-01-01" in error["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(
            requests=[{"custom_id": "a", "params": plain()}], extra_headers={"anthropic-version": "2023-01-01"}
        )
    assert list(client.messages.batches.list()) == []


# ---------------------------------------------------------------------------- batches


def _mixed_requests() -> list[dict]:
    good = params_for(["I love it"])
    return [
        {"custom_id": "ok", "params": good},
        {"custom_id": "temperature", "params": {**good, "temperature": 0.0}},
        {"custom_id": "top-k", "params": {**good, "top_k": 5}},
        {"custom_id": "new-model-temperature", "params": {**plain(NEW_MODEL), "temperature": 0.3}},
        {"custom_id": "assistant-document", "params": {
            **good, "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": [DOCUMENT]},
                                 {"role": "user", "content": "b"}]}},
        {"custom_id": "cited", "params": {
            **good, "messages": [{"role": "user", "content": [{"type": "text", "text": "t", "citations": CITATIONS}]}]}},
    ]


NEW_RULES_ERRORED = {"temperature", "top-k", "new-model-temperature", "assistant-document", "cited"}


def _check_new_rules(results: dict) -> None:
    assert results["ok"].type == "succeeded"
    for custom_id in NEW_RULES_ERRORED:
        result = results[custom_id]
        assert result.type == "errored", custom_id
        assert result.error.error.type == "invalid_request_error", custom_id
    assert results["temperature"].error.error.message == "temperature: Extra inputs are not permitted"


def _check_old_rules(results: dict) -> None:
    for custom_id in ("ok", "temperature", "top-k", "assistant-document", "cited"):
        assert results[custom_id].type == "succeeded", custom_id
    assert results["new-model-temperature"].type == "errored"
    assert results["new-model-temperature"].error.error.type == "invalid_request_error"


def test_batch_requests_follow_the_version_the_batch_was_created_with(emulator, client):
    batch = client.messages.batches.create(requests=_mixed_requests())  # the create itself succeeds
    assert batch.processing_status == "in_progress"
    old = client.messages.batches.create(requests=_mixed_requests(), extra_headers=OLD)
    assert emulator.wait_idle()
    _check_new_rules(results_by_id(client, batch.id))
    _check_old_rules(results_by_id(client, old.id))
    meta = json.loads((emulator.state_dir / "batches" / batch.id / "meta.json").read_text())
    assert meta["api_version"] == "2026-10-21"


def test_batch_version_survives_a_restart(emulator_factory):
    first = emulator_factory(worker_paused=True)
    with first.client(max_retries=0) as client:
        new = client.messages.batches.create(requests=_mixed_requests())
        old = client.messages.batches.create(requests=_mixed_requests(), extra_headers=OLD)
    first.stop()
    assert json.loads((first.state_dir / "batches" / old.id / "meta.json").read_text())["api_version"] == "2023-06-01"

    second = emulator_factory()
    with second.client(max_retries=0) as client:
        # Retrieving and listing with the other version changes nothing: the creation's version rules.
        wait_ended(client, old.id)
        wait_ended(client, new.id)
        assert second.wait_idle()
        _check_new_rules(results_by_id(client, new.id))
        _check_old_rules(results_by_id(client.with_options(default_headers=OLD), old.id))


def test_batch_version_reaches_the_helper_processes(emulator_factory, monkeypatch):
    monkeypatch.setattr(worker, "PARALLEL_MIN_REQUESTS", 2)
    emu = emulator_factory(worker_processes=2)
    with emu.client(max_retries=0) as client:
        new = client.messages.batches.create(requests=_mixed_requests())
        old = client.messages.batches.create(requests=_mixed_requests(), extra_headers=OLD)
        assert emu.wait_idle()
        assert emu.stats()["batches_computed_in_helper_processes"] == 2
        _check_new_rules(results_by_id(client, new.id))
        _check_old_rules(results_by_id(client, old.id))
