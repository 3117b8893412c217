"""State in the state dir survives a restart; secrets never reach it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anthropic

from conftest import requests_for, results_by_id, wait_ended

ROOT = Path(__file__).resolve().parents[2]


def test_batch_survives_a_restart(emulator_factory):
    first = emulator_factory()
    with first.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for(["I love it", "awful"]))
        wait_ended(client, batch.id)
        before = results_by_id(client, batch.id)
    first.stop()

    second = emulator_factory()  # same state dir, new port
    with second.client(max_retries=0) as client:
        again = client.messages.batches.retrieve(batch.id)
        assert again.processing_status == "ended"
        assert str(second.port) in again.results_url
        assert results_by_id(client, batch.id) == before
        assert [b.id for b in client.messages.batches.list()] == [batch.id]


def test_unfinished_work_resumes_after_a_restart(emulator_factory):
    first = emulator_factory(worker_paused=True)
    with first.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for(["a", "b", "c"]))
    first.stop()
    assert not (first.state_dir / "batches" / batch.id / "results.jsonl").exists()

    second = emulator_factory()
    with second.client(max_retries=0) as client:
        ended = wait_ended(client, batch.id)
        assert ended.request_counts.succeeded == 3
        assert len(results_by_id(client, batch.id)) == 3


def test_cancel_and_clock_survive_a_restart(emulator_factory):
    first = emulator_factory(processing_seconds=3600)
    with first.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for(["a", "b"]))
        client.messages.batches.cancel(batch.id)
    first.advance_clock(86400 * 2)
    moved = first.now()
    first.stop()

    second = emulator_factory(processing_seconds=3600)
    assert second.now() >= moved
    with second.client(max_retries=0) as client:
        ended = wait_ended(client, batch.id)
        assert ended.cancel_initiated_at is not None and ended.request_counts.canceled == 2


def test_received_log_survives_a_restart(emulator_factory):
    first = emulator_factory()
    with first.client(max_retries=0) as client:
        client.messages.batches.create(requests=requests_for(["a", "b"]))
    first.stop()
    second = emulator_factory()
    assert [e["custom_id"] for e in second.received()] == ["r0", "r1"]


def test_api_keys_never_reach_the_state_dir(emulator_factory):
    secret = "sk-ant-very-secret-key-123"
    emu = emulator_factory(api_keys=[secret])
    with anthropic.Anthropic(base_url=emu.base_url, api_key=secret, max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests_for(["a"]))
        wait_ended(client, batch.id)
        client.messages.create(**requests_for(["b"])[0]["params"])
    for path in emu.state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_cli_serves_and_stops_cleanly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python_udfs"), CLAUDE_BATCH_EMULATOR_API_KEYS="sk-a,sk-b")
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_batch.emulator", "--port", "0", "--state-dir", str(tmp_path / "state"),
         "--processing-seconds", "0", "--faults", json.dumps({"seed": 3})],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("claude-batch-emulator listening on http://127.0.0.1:")
        base_url = line.split()[-1]
        with anthropic.Anthropic(base_url=base_url, api_key="sk-b", max_retries=0) as client:
            batch = client.messages.batches.create(requests=requests_for(["hello"]))
            assert wait_ended(client, batch.id).request_counts.succeeded == 1
        with anthropic.Anthropic(base_url=base_url, api_key="sk-c", max_retries=0) as client:
            try:
                client.messages.batches.list()
                raise AssertionError("a key outside CLAUDE_BATCH_EMULATOR_API_KEYS was accepted")
            except anthropic.AuthenticationError:
                pass
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert (tmp_path / "state" / "batches" / batch.id / "meta.json").exists()
