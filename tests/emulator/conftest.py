"""Shared helpers for the emulator tests.

The ``emulator`` and ``emulator_factory`` fixtures come from claude_batch.emulator.pytest_plugin
(enabled in tests/conftest.py); they are imported here as well so these tests also run on their own.
"""

from __future__ import annotations

import time
from typing import Iterable

import pytest

from claude_batch import prompts
from claude_batch.emulator.pytest_plugin import emulator, emulator_factory  # noqa: F401

SPEC = prompts.PromptSpec(
    model="claude-sonnet-4-6",
    instructions="Classify the sentiment of each customer review.",
    labels=(
        prompts.Label("positive", "the customer is happy or praises the product"),
        prompts.Label("negative", "the customer complains or reports a problem"),
        prompts.Label("neutral", "neither positive nor negative"),
    ),
)

TOOL_SPEC = prompts.PromptSpec(
    model="claude-sonnet-4-6",
    instructions="Tag each support ticket with every topic it mentions.",
    labels=(
        prompts.Label("billing", "invoices, charges, refunds, payment"),
        prompts.Label("shipping", "delivery, parcel, courier, arrived late"),
        prompts.Label("quality", "broken, defective, scratched, stopped working"),
    ),
    multi_label=True,
    output_mode="tool",  # the forced classify tool
)


def params_for(texts: Iterable[str], spec: prompts.PromptSpec = SPEC, *, cache: bool = False) -> dict:
    return prompts.build_params(spec, list(enumerate(texts, start=1)), cache=cache)


def requests_for(texts: Iterable[str], spec: prompts.PromptSpec = SPEC, prefix: str = "r") -> list[dict]:
    return [
        {"custom_id": f"{prefix}{i}", "params": params_for([text], spec)} for i, text in enumerate(texts)
    ]


def wait_ended(client, batch_id: str, timeout: float = 30.0):
    """Poll like a real client until the batch has ended (no fixed sleeps in the tests)."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.processing_status} after {timeout} s")
        time.sleep(0.02)


def results_by_id(client, batch_id: str) -> dict:
    return {line.custom_id: line.result for line in client.messages.batches.results(batch_id)}


@pytest.fixture
def client(emulator):
    """A sync SDK client with retries off, so every fault is seen."""
    with emulator.client(max_retries=0) as sdk:
        yield sdk
