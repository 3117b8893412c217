"""Faults on demand and rate limits, each seen through the real SDK."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from claude_batch.emulator.faults import pick_outcome
from conftest import params_for, requests_for, results_by_id, wait_ended


def test_429_with_retry_after_then_recovers(emulator, client):
    emulator.set_faults(http_errors=[{"status": 429, "count": 1, "retry_after": 7}])
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(**params_for(["x"]))
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    client.messages.create(**params_for(["x"]))  # the burst is used up
    assert emulator.faults()["http_errors"][0]["count"] == 0


@pytest.mark.parametrize(
    "status, error_class, error_type",
    [(500, anthropic.InternalServerError, "api_error"), (529, anthropic.OverloadedError, "overloaded_error")],
)
def test_server_error_bursts(emulator, client, status, error_class, error_type):
    emulator.set_faults(http_errors=[{"status": status, "count": 2}])
    for _ in range(2):
        with pytest.raises(error_class) as raised:
            client.messages.batches.list()
        assert raised.value.status_code == status and raised.value.body["error"]["type"] == error_type
    client.messages.batches.list()


def test_sdk_retries_through_a_burst(emulator):
    emulator.set_faults(http_errors=[{"status": 529, "count": 2, "retry_after": 0.01}])
    with emulator.client(max_retries=2) as client:
        batch = client.messages.batches.create(requests=requests_for(["a"]))
    assert batch.processing_status == "in_progress"
    assert emulator.stats()["calls"]["fault:http_529"] == 2
    assert emulator.stats()["calls"]["POST /v1/messages/batches"] == 3


def test_path_prefix_and_method_select_the_calls(emulator, client):
    emulator.set_faults(
        http_errors=[{"status": 500, "count": 5, "path_prefix": "/v1/messages/batches", "method": "POST"}]
    )
    client.messages.create(**params_for(["not a batch call"]))
    client.messages.batches.list()  # GET: not selected
    with pytest.raises(anthropic.InternalServerError):
        client.messages.batches.create(requests=requests_for(["a"]))


def test_slow_answers(emulator):
    emulator.set_faults(latency_seconds=1.0)
    with emulator.client(max_retries=0, timeout=0.2) as client:
        with pytest.raises(anthropic.APITimeoutError):
            client.messages.batches.list()
    emulator.set_faults({})


def test_dropped_connections(emulator, client):
    emulator.set_faults(drop_connections=1)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(**params_for(["x"]))
    client.messages.create(**params_for(["x"]))
    with emulator.client(max_retries=1) as retrying:
        emulator.set_faults(drop_connections=1)
        retrying.messages.batches.list()  # the SDK retries the dropped call


def test_results_stream_cut_half_way(emulator, client):
    batch = client.messages.batches.create(requests=requests_for([f"row {i}" for i in range(30)]))
    wait_ended(client, batch.id)
    emulator.set_faults(cut_results=1)
    received = []
    # The SDK streams the body: the incomplete read surfaces while iterating, after some lines.
    with pytest.raises(httpx2.TransportError, match="incomplete|complete message body"):
        for line in client.messages.batches.results(batch.id):
            received.append(line.custom_id)
    assert 0 < len(received) < 30
    assert len(list(client.messages.batches.results(batch.id))) == 30  # next download is whole


def test_fractions_of_errored_expired_canceled(emulator, client):
    faults = {"errored_fraction": 0.25, "expired_fraction": 0.25, "canceled_fraction": 0.25, "seed": 1}
    emulator.set_faults(faults)
    batch = client.messages.batches.create(requests=requests_for([f"row {i}" for i in range(80)]))
    ended = wait_ended(client, batch.id)
    counts = ended.request_counts
    assert counts.succeeded + counts.errored + counts.expired + counts.canceled == 80
    assert min(counts.succeeded, counts.errored, counts.expired, counts.canceled) > 0
    results = results_by_id(client, batch.id)
    expected = {cid: pick_outcome(faults, 1, cid) or "succeeded" for cid in results}
    assert {cid: r.type for cid, r in results.items()} == expected  # deterministic by custom_id
    for result in results.values():
        if result.type == "errored":
            assert result.error.error.type in ("api_error", "overloaded_error")  # retryable


def test_resubmitted_requests_get_a_fresh_draw(emulator, client):
    emulator.set_faults(errored_fraction=0.5)
    first = client.messages.batches.create(requests=requests_for([f"row {i}" for i in range(40)]))
    wait_ended(client, first.id)
    failed = [cid for cid, r in results_by_id(client, first.id).items() if r.type == "errored"]
    assert failed
    retry = client.messages.batches.create(
        requests=[{"custom_id": cid, "params": params_for(["again"])} for cid in failed]
    )
    wait_ended(client, retry.id)
    retried = results_by_id(client, retry.id)
    assert any(r.type == "succeeded" for r in retried.values())


def test_faults_control_endpoint(emulator):
    url = f"{emulator.base_url}/_emulator/faults"
    config = {"http_errors": [{"status": 529, "count": 3, "retry_after": 2}], "errored_fraction": 0.1}
    assert httpx2.post(url, json=config).status_code == 200
    assert httpx2.get(url).json()["http_errors"][0]["count"] == 3
    bad = httpx2.post(url, json={"errored_fractoin": 0.1})
    assert bad.status_code == 400 and "errored_fractoin" in bad.json()["error"]["message"]
    assert httpx2.post(url, json={"errored_fraction": 2}).status_code == 400
    assert httpx2.post(url, json={}).json() == {"http_errors": []}


def test_control_endpoints_are_never_faulted(emulator):
    emulator.set_faults(http_errors=[{"status": 500, "count": 10}], drop_connections=5)
    assert httpx2.get(f"{emulator.base_url}/_emulator/stats").status_code == 200


# ---------------------------------------------------------------------------- rate limits


def test_messages_rpm(emulator, client):
    emulator.set_faults(messages_rpm=2)
    client.messages.create(**params_for(["x"]))
    client.messages.create(**params_for(["x"]))
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(**params_for(["x"]))
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= 60
    emulator.advance_clock(61)
    client.messages.create(**params_for(["x"]))


def test_messages_token_limits(emulator, client):
    emulator.set_faults(messages_itpm=100)
    client.messages.create(**params_for(["x"]))  # > 100 input tokens: the window is now full
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**params_for(["x"]))
    emulator.set_faults(messages_otpm=5)
    emulator.advance_clock(61)
    client.messages.create(**params_for(["x", "y"]))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**params_for(["x"]))


def test_batch_rpm_counts_every_batch_endpoint(emulator, client):
    emulator.set_faults(batch_rpm=3)
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    client.messages.batches.retrieve(batch.id)
    client.messages.batches.list()
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.batches.retrieve(batch.id)
    assert "retry-after" in raised.value.response.headers
    client.messages.create(**params_for(["x"]))  # Messages calls are a separate limit
    emulator.advance_clock(61)
    client.messages.batches.retrieve(batch.id)


def test_queue_cap(emulator, client):
    emulator.set_faults(queue_cap=5)
    emulator.pause_worker()
    client.messages.batches.create(requests=requests_for(["a", "b", "c"]))
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.batches.create(requests=requests_for(["d", "e", "f"]))
    assert "queue" in raised.value.body["error"]["message"]
    client.messages.batches.create(requests=requests_for(["d", "e"]))  # exactly at the cap
    emulator.resume_worker()
    emulator.wait_idle()
    client.messages.batches.create(requests=requests_for(["g", "h", "i"]))  # ended batches free the queue


def test_batch_never_finishing_can_be_canceled(emulator, client):
    emulator.set_faults(never_finish=True)
    batch = client.messages.batches.create(requests=requests_for(["a", "b"]))
    emulator.wait_idle()
    emulator.advance_clock(3600)
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    client.messages.batches.cancel(batch.id)
    ended = wait_ended(client, batch.id)
    assert ended.request_counts.canceled == 2
    assert {r.type for r in results_by_id(client, batch.id).values()} == {"canceled"}
