"""Recording a submission's intent: the ``cb_batches`` row, every request and every item, before any call.

A submission is one batch create (mode ``batch``) or one chunk of real-time calls (mode ``realtime``).
Its intent is written before the API is called (requests, items, then the ``cb_batches`` row that
commits it: single-table writes, no transaction), so a crash at any point leaves something the next
run can reconcile or sweep (docs/state-machine.md).
"""

from __future__ import annotations

from . import packing
from .runs import RunContext
from .state import Submission
from .statuses import RequestStatus
from .warehouse import quote_literal as _lit


def record_intent_sql(pipe: RunContext, sub_key: str, first: int, last: int, body_bytes: int, prefix: int,
                      cached: bool) -> int:
    """The intent of requests ``first``..``last`` (planned in the warehouse); returns its item count."""
    n_req, n_items = pipe.wh.fetchall(
        f"SELECT count(*), sum(n_items) FROM {packing.REQUESTS} WHERE req_no BETWEEN ? AND ?", [first, last])[0]
    submission = Submission(
        submission_key=sub_key, classifier=pipe.cfg.name, version=pipe.cfg.version, model=pipe.cfg.spec.model,
        mode="batch", request_count=int(n_req), item_count=int(n_items), body_bytes=body_bytes,
        run_id=pipe.run.run_id)
    where = f"BETWEEN {int(first)} AND {int(last)}"
    pipe.store.record_intent_sql(
        submission,
        f"""SELECT {packing.custom_id_sql(pipe.wh, sub_key, f'req_no - {int(first)}')}, {_lit(sub_key)}, {_lit(pipe.cfg.name)},
                   {_lit(pipe.cfg.version)}, {_lit(pipe.cfg.spec.model)}, attempt, n_items,
                   {int(prefix)}, {bool(cached)}, chars, 'submitting'
            FROM {packing.REQUESTS} WHERE req_no {where}""",
        f"""SELECT {packing.custom_id_sql(pipe.wh, sub_key, f'req_no - {int(first)}')}, item_id, {_lit(pipe.cfg.version)},
                   text_hash, attempt, chars
            FROM {packing.ITEMS} WHERE req_no {where}""",
    )
    return int(n_items)


def record_intent(pipe: RunContext, sub_key: str, planned: list[packing.PlannedRequest], body_bytes: int,
                  prefix: int, cached: bool, *, mode: str) -> None:
    """The intent of requests planned in Python (real-time chunks, a preflight)."""
    submission = Submission(
        submission_key=sub_key, classifier=pipe.cfg.name, version=pipe.cfg.version, model=pipe.cfg.spec.model,
        mode=mode, request_count=len(planned), item_count=sum(len(p.items) for p in planned),
        body_bytes=body_bytes, run_id=pipe.run.run_id)
    # Columns, not a dict per row: a batch can carry a million items.
    n_req = len(planned)
    requests = {
        "custom_id": [p.custom_id for p in planned], "submission_key": [sub_key] * n_req,
        "classifier": [pipe.cfg.name] * n_req, "version": [pipe.cfg.version] * n_req,
        "model": [pipe.cfg.spec.model] * n_req, "attempt": [p.attempt for p in planned],
        "item_count": [len(p.items) for p in planned], "prefix_tokens": [prefix] * n_req,
        "cached_prefix": [cached] * n_req, "row_chars": [p.chars for p in planned],
        "status": [RequestStatus.SUBMITTING] * n_req,
    }
    n_items = sum(len(p.items) for p in planned)
    items = {
        "custom_id": [p.custom_id for p in planned for _ in p.items],
        "item_id": [local for p in planned for local, _, _ in p.items],
        "version": [pipe.cfg.version] * n_items,
        "text_hash": [item.text_hash for p in planned for _, item, _ in p.items],
        "attempt": [item.attempt for p in planned for _, item, _ in p.items],
        "row_chars": [n for p in planned for _, _, n in p.items],
    }
    pipe.store.record_intent(submission, requests, items)
