"""Every endpoint through the async SDK client."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from anthropic.types import Message, MessageTokensCount
from anthropic.types.messages import DeletedMessageBatch, MessageBatch

from conftest import params_for, requests_for


async def _wait_ended(client: anthropic.AsyncAnthropic, batch_id: str) -> MessageBatch:
    for _ in range(1500):
        batch = await client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        await asyncio.sleep(0.02)
    raise AssertionError("batch did not end")


async def test_async_messages_and_count_tokens(emulator):
    async with emulator.async_client(max_retries=0) as client:
        params = params_for(["I love it", "awful"])
        message, count = await asyncio.gather(
            client.messages.create(**params),
            client.messages.count_tokens(model=params["model"], messages=params["messages"]),
        )
        assert isinstance(message, Message) and message.content[0].type == "text"
        assert isinstance(count, MessageTokensCount) and count.input_tokens > 0


async def test_async_batch_lifecycle(emulator):
    async with emulator.async_client(max_retries=0) as client:
        batches = [await client.messages.batches.create(requests=requests_for(["a", "b"])) for _ in range(3)]
        assert all(isinstance(b, MessageBatch) for b in batches)
        ended = await _wait_ended(client, batches[0].id)
        assert ended.request_counts.succeeded == 2

        listed = [b.id async for b in client.messages.batches.list(limit=2)]
        assert listed == [b.id for b in reversed(batches)]

        lines = [line async for line in await client.messages.batches.results(batches[0].id)]
        assert sorted(line.custom_id for line in lines) == ["r0", "r1"]
        assert all(line.result.type == "succeeded" for line in lines)

        deleted = await client.messages.batches.delete(batches[0].id)
        assert isinstance(deleted, DeletedMessageBatch)


async def test_async_cancel_and_errors(emulator):
    emulator.pause_worker()
    async with emulator.async_client(max_retries=0) as client:
        batch = await client.messages.batches.create(requests=requests_for(["a"]))
        canceling = await client.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling"
        emulator.resume_worker()
        await _wait_ended(client, batch.id)
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.batches.retrieve("msgbatch_missing")
        emulator.set_faults(http_errors=[{"status": 529, "count": 1}])
        with pytest.raises(anthropic.OverloadedError):
            await client.messages.create(**params_for(["x"]))
