"""claude_batch.logs: a line goes to dbt's event system inside a dbt node, to the ``claude_batch``
Python logger anywhere else; never to both. Real dbt event manager, no mocks."""

from __future__ import annotations

import threading

import pytest
from dbt_common.events import event_manager_client
from dbt_common.events.contextvars import log_contextvars
from dbt_common.events.event_manager import EventManager

from claude_batch import batches, collect, logs


@pytest.fixture
def dbt_events():
    """A dbt event manager with a callback recording every event's message (restored after)."""
    seen: list[str] = []
    before = event_manager_client.get_event_manager()
    manager = EventManager()
    manager.add_callback(lambda msg: seen.append(msg.info.msg))
    event_manager_client.ctx_set_event_manager(manager)
    try:
        yield seen
    finally:
        event_manager_client.ctx_set_event_manager(before)


def test_outside_dbt_a_warning_goes_to_the_claude_batch_logger_only(caplog, dbt_events):
    with caplog.at_level("INFO", logger="claude_batch"):
        logs.warn("plain warning")
        logs.info("plain info")
    assert [(r.name, r.levelname, r.message) for r in caplog.records] == [
        ("claude_batch", "WARNING", "plain warning"), ("claude_batch", "INFO", "plain info")]
    assert not any("plain" in m for m in dbt_events)


def test_inside_a_dbt_node_a_warning_goes_to_dbts_log_only(caplog, dbt_events):
    with caplog.at_level("INFO", logger="claude_batch"), log_contextvars(node_info={"unique_id": "model.x.y"}):
        assert logs.in_dbt()
        logs.warn("node warning")
    assert any("claude_batch: node warning" in m for m in dbt_events)
    assert "node warning" not in caplog.text


def test_a_helper_thread_of_a_dbt_run_logs_to_dbt(caplog, dbt_events):
    """Threads carry no node context (a real-time loop, a DuckDB UDF call): dbt set up its event
    logging (callbacks), so their lines go to dbt's log too; the main thread outside a node does not."""
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(logs.in_dbt()))
    thread.start()
    thread.join()
    assert got == [True]
    assert not logs.in_dbt()


def test_stages_log_through_the_one_module():
    """collect and batches use claude_batch.logs (their warnings reach dbt's log), not plain logging."""
    for module in (collect, batches):
        assert getattr(module, "logs", None) is logs
        assert not hasattr(module, "log") and not hasattr(module, "logging")
