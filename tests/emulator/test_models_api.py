"""GET /v1/models and /v1/models/{id} through the real SDK: objects parse into the SDK's types and
carry the facts of _data/models.json."""

from __future__ import annotations

from datetime import datetime, timezone

import anthropic
import pytest
from anthropic.types import ModelInfo
from anthropic.types.model_capabilities import ModelCapabilities

from claude_batch import catalog

UTC = timezone.utc


def _at(day) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_retrieve_parses_into_the_sdk_types_with_the_facts(client):
    model = client.models.retrieve("claude-haiku-5-5")
    info = catalog.model_info("claude-haiku-5-5")
    assert isinstance(model, ModelInfo) and isinstance(model.capabilities, ModelCapabilities)
    assert model.type == "model" and model.id == "claude-haiku-5-5"
    assert model.display_name == info.display_name == "Claude Haiku 5.5"
    assert model.created_at == _at(info.released) == datetime(2026, 10, 7, tzinfo=UTC)
    assert model.lifecycle == "active" and model.deprecated_at is None and model.retires_at is None
    assert model.line == "haiku"
    assert model.max_input_tokens == info.context_window == 1_000_000
    assert model.max_tokens == info.max_output_tokens == 128_000
    caps = model.capabilities
    assert caps.batch.supported and caps.structured_outputs.supported
    assert caps.effort.supported
    assert all(getattr(caps.effort, level).supported for level in catalog.EFFORT_LEVELS)
    types = caps.thinking.types
    assert caps.thinking.supported
    assert (types.adaptive.supported, types.enabled.supported, types.disabled.supported,
            types.between_tools.supported) == (True, False, True, False)
    # Strict parse: every field the SDK types require is present with the right type.
    ModelInfo.model_validate(client.get("/v1/models/claude-haiku-5-5", cast_to=object))


def test_per_model_facts(client):
    haiku45 = client.models.retrieve("claude-haiku-4-5")
    assert not haiku45.capabilities.effort.supported
    assert not any(getattr(haiku45.capabilities.effort, level).supported for level in catalog.EFFORT_LEVELS)
    assert haiku45.max_input_tokens == 200_000 and haiku45.max_tokens == 64_000
    sonnet55 = client.models.retrieve("claude-sonnet-5-5")
    assert sonnet55.capabilities.thinking.types.between_tools.supported
    assert not sonnet55.capabilities.thinking.types.disabled.supported
    opus55 = client.models.retrieve("claude-opus-5-5")
    assert opus55.created_at == datetime(1970, 1, 1, tzinfo=UTC)  # release day unknown: the epoch
    # Our "legacy" is "active" among the API's three stages.
    assert catalog.model_info("claude-sonnet-4-6").lifecycle == "legacy"
    assert client.models.retrieve("claude-sonnet-4-6").lifecycle == "active"


def test_alias_resolves_to_the_canonical_id(client):
    assert client.models.retrieve("claude-haiku-4-5-20251001").id == "claude-haiku-4-5"
    assert client.models.retrieve("claude-mythos-5-2").id == "claude-fable-5-2"


def test_unknown_and_fact_less_ids_are_404(client):
    for model_id in ("claude-nonexistent-9", "claude-opus-4-1"):
        with pytest.raises(anthropic.NotFoundError) as raised:
            client.models.retrieve(model_id)
        assert raised.value.body["error"] == {"type": "not_found_error", "message": f"model: {model_id}"}


def test_lifecycle_follows_the_virtual_clock(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    opus45 = client.models.retrieve("claude-opus-4-5")
    assert opus45.lifecycle == "deprecated"
    assert opus45.deprecated_at == datetime(2026, 11, 23, tzinfo=UTC)
    assert opus45.retires_at == datetime(2027, 1, 22, tzinfo=UTC)
    sonnet45 = client.models.retrieve("claude-sonnet-4-5")  # retired, still in the catalogue
    assert sonnet45.lifecycle == "retired" and sonnet45.retires_at == datetime(2026, 11, 30, tzinfo=UTC)
    emulator.set_clock("2026-11-01T12:00:00Z")
    assert client.models.retrieve("claude-sonnet-4-5").lifecycle == "deprecated"
    emulator.set_clock("2027-02-01T00:00:00Z")
    assert client.models.retrieve("claude-opus-4-5").lifecycle == "retired"


def _expected_order(lifecycles=("active", "deprecated"), day=None) -> list[str]:
    from datetime import date

    day = day or date(2026, 12, 3)
    infos = [i for i in catalog.MODELS.values()
             if {"legacy": "active"}.get(i.lifecycle_on(day), i.lifecycle_on(day)) in lifecycles]
    dated = sorted((i for i in infos if i.released), key=lambda i: (-i.released.toordinal(), i.name))
    undated = sorted((i.name for i in infos if not i.released))
    return [i.name for i in dated] + undated


def test_list_newest_first_and_paged(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    everything = [m.id for m in client.models.list()]  # auto-pagination over pages of 20
    assert everything == _expected_order()
    assert everything[:3] == ["claude-fable-5-2", "claude-haiku-5-5", "claude-sonnet-5-5"]
    assert "claude-sonnet-4-5" not in everything  # retired: only when asked for (SDK list docs)
    page = client.models.list(limit=4)
    assert [m.id for m in page.data] == everything[:4]
    assert page.has_more and page.first_id == everything[0] and page.last_id == everything[3]
    following = client.models.list(limit=4, after_id=page.last_id)
    assert [m.id for m in following.data] == everything[4:8]
    before = client.models.list(limit=2, before_id=following.first_id)
    assert [m.id for m in before.data] == everything[2:4] and before.has_more
    assert [m.id for m in client.models.list(limit=4)] == everything  # the SDK's pager follows last_id
    last = client.models.list(limit=1000)
    assert not last.has_more and len(last.data) == len(everything)
    # Both cursors: the models strictly between them.
    between = client.models.list(after_id=everything[1], before_id=everything[5])
    assert [m.id for m in between.data] == everything[2:5] and not between.has_more
    # A cursor naming no listed model: an empty last page, as the batch list answers.
    for cursor in ({"after_id": "claude-nonexistent-9"}, {"before_id": "claude-sonnet-4-5"}):
        empty = client.models.list(**cursor)
        assert empty.data == [] and not empty.has_more and empty.first_id is None


def test_list_lifecycle_filter(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    retired = [m.id for m in client.models.list(lifecycle=["retired"])]
    assert retired == ["claude-sonnet-4-5"]
    deprecated = client.models.list(lifecycle=["deprecated"]).data
    assert [m.id for m in deprecated] == ["claude-opus-4-5"] and deprecated[0].lifecycle == "deprecated"
    every = [m.id for m in client.models.list(lifecycle=["active", "deprecated", "retired"])]
    assert every == _expected_order(("active", "deprecated", "retired"))
    assert len(every) == len(catalog.MODELS)


def test_list_bad_queries_are_400(client):
    for limit in (0, 1001):
        with pytest.raises(anthropic.BadRequestError):
            client.models.list(limit=limit)
    with pytest.raises(anthropic.BadRequestError):
        client.models.list(extra_query={"lifecycle[]": "legacy"})


def test_models_api_needs_authentication(client):
    with pytest.raises(anthropic.AuthenticationError):
        client.models.list(extra_headers={"Authorization": anthropic.Omit()})
    with pytest.raises(anthropic.AuthenticationError):
        client.models.retrieve("claude-haiku-5-5", extra_headers={"Authorization": anthropic.Omit()})


def test_models_api_is_read_only(emulator):
    import httpx2

    response = httpx2.post(
        f"{emulator.base_url}/v1/models",
        headers={"x-api-key": emulator.api_key, "anthropic-version": "2026-10-21"},
        json={},
    )
    assert response.status_code == 405 and response.json()["type"] == "error"
    stats = emulator.stats()["calls"]
    assert stats.get("POST /v1/models") == 1


def test_listed_models_are_usable_and_retired_ones_are_not(emulator, client):
    emulator.set_clock("2026-12-03T12:00:00Z")
    for model in client.models.list(lifecycle=["active", "deprecated", "retired"]):
        params = {"model": model.id, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
        if model.lifecycle == "retired":
            with pytest.raises(anthropic.NotFoundError):
                client.messages.count_tokens(model=model.id, messages=params["messages"])
        else:
            assert client.messages.count_tokens(model=model.id, messages=params["messages"]).input_tokens > 0
