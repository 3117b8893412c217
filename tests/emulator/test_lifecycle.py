"""The batch lifecycle on the virtual clock: processing time, expiry, archiving."""

from __future__ import annotations

from datetime import timedelta

import anthropic
import httpx2
import pytest

from claude_batch.emulator.clock import parse_rfc3339
from conftest import requests_for, results_by_id, wait_ended


def test_batch_ends_when_the_clock_passes_its_processing_time(emulator_factory):
    emu = emulator_factory(processing_seconds=60)
    with emu.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for(["a", "b"]))
        assert emu.wait_idle()  # the worker is done, but the batch waits for the clock
        still = client.messages.batches.retrieve(batch.id)
        assert still.processing_status == "in_progress" and still.request_counts.processing == 2
        assert still.request_counts.succeeded == 0  # counts stay 0 until the end
        emu.advance_clock(61)
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.ended_at == ended.created_at + timedelta(seconds=60)
        assert ended.request_counts.succeeded == 2


def test_never_finish_expires_after_24_hours(emulator, client):
    emulator.set_faults(never_finish=True)
    batch = client.messages.batches.create(requests=requests_for(["a", "b", "c"]))
    emulator.wait_idle()
    emulator.advance_clock(23 * 3600)
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    emulator.advance_clock(2 * 3600)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at == ended.expires_at
    assert ended.request_counts.expired == 3
    assert {r.type for r in results_by_id(client, batch.id).values()} == {"expired"}


def test_requests_unfinished_at_expiry_come_back_expired(emulator_factory):
    emu = emulator_factory(processing_seconds=48 * 3600)  # half the requests are done at 24 h
    with emu.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for([f"t{i}" for i in range(4)]))
        emu.wait_idle()
        emu.advance_clock(25 * 3600)
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.request_counts.succeeded == 2 and ended.request_counts.expired == 2
        results = results_by_id(client, batch.id)
        assert [results[f"r{i}"].type for i in range(4)] == ["succeeded", "succeeded", "expired", "expired"]


def test_results_are_archived_after_29_days(emulator, client):
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    wait_ended(client, batch.id)
    emulator.advance_clock(28 * 24 * 3600)
    assert client.messages.batches.retrieve(batch.id).archived_at is None
    assert len(list(client.messages.batches.results(batch.id))) == 1
    emulator.advance_clock(2 * 24 * 3600)
    archived = client.messages.batches.retrieve(batch.id)
    assert archived.archived_at == archived.created_at + timedelta(days=29)
    with pytest.raises(anthropic.NotFoundError) as raised:
        list(client.messages.batches.results(batch.id))
    assert "archived" in raised.value.body["error"]["message"]
    client.messages.batches.delete(batch.id)  # an archived batch can still be deleted


def test_clock_control_endpoint(emulator):
    before = httpx2.get(f"{emulator.base_url}/_emulator/clock").json()
    after = httpx2.post(f"{emulator.base_url}/_emulator/clock", json={"advance_seconds": 7200}).json()
    moved = parse_rfc3339(after["now"]) - parse_rfc3339(before["now"])
    assert timedelta(hours=2) <= moved < timedelta(hours=2, minutes=1)
    assert after["offset_seconds"] >= 7200
    target = "2031-01-02T03:04:05Z"
    answer = httpx2.post(f"{emulator.base_url}/_emulator/clock", json={"set": target}).json()
    assert abs(parse_rfc3339(answer["now"]) - parse_rfc3339(target)) < timedelta(seconds=5)
    assert emulator.now().year == 2031
    bad = httpx2.post(f"{emulator.base_url}/_emulator/clock", json={"advance_seconds": "soon"})
    assert bad.status_code == 400 and bad.json()["type"] == "error"


def test_batch_timestamps_follow_the_virtual_clock(emulator, client):
    emulator.set_clock("2030-06-01T12:00:00Z")
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    assert batch.created_at.year == 2030 and batch.created_at.month == 6
    assert batch.expires_at == batch.created_at + timedelta(hours=24)


def test_processing_seconds_fault_overrides_the_server_setting(emulator, client):
    emulator.set_faults(processing_seconds=600)
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    emulator.wait_idle()
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    emulator.advance_clock(601)
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
