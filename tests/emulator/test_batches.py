"""Batch calls through the real SDK: create, retrieve, list, cancel, delete, results."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest
from anthropic.types.messages import DeletedMessageBatch, MessageBatch, MessageBatchIndividualResponse

from claude_batch import prompts, tokens
from conftest import SPEC, TOOL_SPEC, params_for, requests_for, results_by_id, wait_ended

TEXTS = ["I love it", "terrible, it broke", "it is a box", "best purchase ever", "awful support"]


def test_create_retrieve_results(client):
    batch = client.messages.batches.create(requests=requests_for(TEXTS))
    assert isinstance(batch, MessageBatch)
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 5 and batch.request_counts.succeeded == 0
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600

    ended = wait_ended(client, batch.id)
    assert ended.request_counts.succeeded == 5 and ended.request_counts.processing == 0
    assert ended.ended_at >= ended.created_at
    assert ended.results_url == f"{str(client.base_url).rstrip('/')}/v1/messages/batches/{batch.id}/results"

    lines = list(client.messages.batches.results(batch.id))
    assert all(isinstance(line, MessageBatchIndividualResponse) for line in lines)
    by_id = {line.custom_id: line.result for line in lines}
    assert set(by_id) == {f"r{i}" for i in range(5)}
    labels = {}
    for custom_id, result in by_id.items():
        assert result.type == "succeeded"
        message = result.message
        assert message.usage.service_tier == "batch"
        assert message.usage.input_tokens == tokens.count_request(params_for([TEXTS[int(custom_id[1:])]]))
        outcomes, _ = prompts.parse_answer(SPEC, [b.model_dump() for b in message.content], [1])
        labels[custom_id] = outcomes[0].labels
    assert labels == {
        "r0": ("positive",), "r1": ("negative",), "r2": ("neutral",), "r3": ("positive",), "r4": ("negative",),
    }


def test_results_are_jsonl_streamed_and_not_in_request_order(client):
    batch = client.messages.batches.create(requests=requests_for([f"text {i}" for i in range(40)]))
    wait_ended(client, batch.id)
    decoder = client.messages.batches.results(batch.id)
    assert decoder.http_response.headers["content-type"] == "application/x-jsonl"
    order = [line.custom_id for line in decoder]
    assert sorted(order, key=lambda c: int(c[1:])) == [f"r{i}" for i in range(40)]
    assert order != [f"r{i}" for i in range(40)]
    # Deterministic: the same order on a second download.
    assert [line.custom_id for line in client.messages.batches.results(batch.id)] == order


def test_results_url_follows_the_host_header(emulator, client):
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    wait_ended(client, batch.id)
    response = httpx2.get(
        f"{emulator.base_url}/v1/messages/batches/{batch.id}",
        headers={"x-api-key": "k", "anthropic-version": "2026-10-21", "host": f"localhost:{emulator.port}"},
    )
    assert response.json()["results_url"] == f"http://localhost:{emulator.port}/v1/messages/batches/{batch.id}/results"


def test_tool_mode_batches(client):
    requests = [{"custom_id": "t1", "params": params_for(["refund my invoice", "parcel arrived late"], TOOL_SPEC)}]
    batch = client.messages.batches.create(requests=requests)
    wait_ended(client, batch.id)
    [line] = list(client.messages.batches.results(batch.id))
    block = line.result.message.content[0]
    assert block.type == "tool_use" and line.result.message.stop_reason == "tool_use"
    outcomes, _ = prompts.parse_answer(TOOL_SPEC, [block.model_dump()], [1, 2])
    assert [o.labels for o in outcomes] == [("billing",), ("shipping",)]


def test_list_pagination(client):
    ids = [client.messages.batches.create(requests=requests_for(["x"])).id for _ in range(5)]
    newest_first = list(reversed(ids))

    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert page.has_more is True and page.first_id == newest_first[0] and page.last_id == newest_first[1]

    # The SDK follows after_id = last_id across pages.
    assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first

    after = client.messages.batches.list(limit=2, after_id=newest_first[1])
    assert [b.id for b in after.data] == newest_first[2:4] and after.has_more is True
    last = client.messages.batches.list(limit=2, after_id=newest_first[3])
    assert [b.id for b in last.data] == newest_first[4:] and last.has_more is False

    before = client.messages.batches.list(limit=2, before_id=newest_first[4])
    assert [b.id for b in before.data] == newest_first[2:4] and before.has_more is True
    assert [b.id for b in client.messages.batches.list(limit=3, before_id=newest_first[1])] == newest_first[:1]

    default = client.messages.batches.list()
    assert len(default.data) == 5 and default.has_more is False


def test_empty_list(client):
    page = client.messages.batches.list()
    assert page.data == [] and page.has_more is False and page.first_id is None


def test_cancel_part_way(emulator_factory):
    emu = emulator_factory(processing_seconds=100)
    with emu.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for([f"t{i}" for i in range(10)]))
        emu.wait_idle()
        emu.advance_clock(50)  # requests 0..4 are done at 10, 20, ... 50 s
        canceling = client.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling"
        assert canceling.cancel_initiated_at is not None and canceling.results_url is None
        ended = wait_ended(client, batch.id)
        assert ended.request_counts.succeeded == 5 and ended.request_counts.canceled == 5
        results = results_by_id(client, batch.id)
        assert {k for k, r in results.items() if r.type == "succeeded"} == {f"r{i}" for i in range(5)}
        assert {k for k, r in results.items() if r.type == "canceled"} == {f"r{i}" for i in range(5, 10)}
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.cancel(batch.id)  # already ended


def test_cancel_after_the_work_is_done_still_ends_with_successes(emulator, client):
    # Processing time 0: every request is done at once, "requests already running may still succeed".
    emulator.pause_worker()
    batch = client.messages.batches.create(requests=requests_for(TEXTS))
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"  # idempotent
    assert client.messages.batches.retrieve(batch.id).processing_status == "canceling"
    emulator.resume_worker()
    ended = wait_ended(client, batch.id)
    assert ended.request_counts.succeeded == 5 and ended.request_counts.canceled == 0
    assert ended.cancel_initiated_at is not None


def test_cancel_before_any_work(emulator_factory):
    emu = emulator_factory(processing_seconds=3600)
    with emu.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for(TEXTS))
        client.messages.batches.cancel(batch.id)
        ended = wait_ended(client, batch.id)
        assert ended.request_counts.canceled == 5
        assert {r.type for r in results_by_id(client, batch.id).values()} == {"canceled"}


def test_delete(client):
    batch = client.messages.batches.create(requests=requests_for(["x"]))
    wait_ended(client, batch.id)
    deleted = client.messages.batches.delete(batch.id)
    assert isinstance(deleted, DeletedMessageBatch)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)
    assert list(client.messages.batches.list()) == []


def test_received_log_per_batch_request(emulator, client):
    requests = [
        {"custom_id": "a", "params": params_for(["one", "two"])},
        {"custom_id": "b", "params": params_for(["three"])},
    ]
    batch = client.messages.batches.create(requests=requests)
    entries = emulator.received(batch.id)
    assert [(e["custom_id"], e["rows"], e["model"]) for e in entries] == [
        ("a", ["one", "two"], SPEC.model),
        ("b", ["three"], SPEC.model),
    ]
    lines = httpx2.get(f"{emulator.base_url}/_emulator/received", params={"batch": batch.id}).text.splitlines()
    assert [json.loads(line)["custom_id"] for line in lines] == ["a", "b"]


def test_received_log_outlives_the_batch(emulator, client):
    # A create only leaves a placeholder in the log (received.py); it must not need the batch later.
    batch = client.messages.batches.create(requests=requests_for(["one", "two"]))
    wait_ended(client, batch.id)
    client.messages.batches.delete(batch.id)
    assert [e["rows"] for e in emulator.received(batch.id)] == [["one"], ["two"]]
    assert not (emulator.server.received.pending_dir).exists()
    second = client.messages.batches.create(requests=requests_for(["three"]))
    lines = httpx2.get(f"{emulator.base_url}/_emulator/received").text.splitlines()
    assert [json.loads(line)["rows"] for line in lines] == [["one"], ["two"], ["three"]]
    assert all(json.loads(line)["batch"] in (batch.id, second.id) for line in lines)


def test_stats_endpoint(emulator, client):
    batch = client.messages.batches.create(requests=requests_for(TEXTS))
    wait_ended(client, batch.id)
    stats = httpx2.get(f"{emulator.base_url}/_emulator/stats").json()
    assert stats["batches"]["ended"] == 1
    assert stats["calls"]["POST /v1/messages/batches"] == 1
    assert stats["batch_requests_processed"] == 5
    assert emulator.stats()["calls"]["batch_requests_received"] == 5
