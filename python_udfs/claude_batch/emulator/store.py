"""Batch persistence and lifecycle, all on disk under ``<state dir>/batches/<id>/``.

- ``meta.json``: the batch's state (rewritten atomically on every change).
- ``requests.jsonl``: the requests as received, one per line (written before create returns).
- ``buckets/NN.jsonl``: results computed by the worker, spread over 16 files by a hash of
  ``custom_id``; each line is ``index<TAB>custom_id<TAB>type<TAB>result JSON``.
- ``results.jsonl``: the downloadable results (bucket order, then request order within a bucket:
  deterministic, not the request order), served from disk in chunks.

Lifecycle (``refresh``, applied lazily on every read and by the worker when it finishes):
request ``i`` of ``n`` is "done" at ``created_at + processing_seconds * (i + 1) / n`` (never, for a
``never_finish`` batch). A batch ends, once the worker has computed every line:

- normally at ``created_at + processing_seconds`` (results as computed);
- after a cancel, at ``cancel_initiated_at + cancel_seconds``: requests not done by
  ``cancel_initiated_at`` become ``canceled``; done ones keep their result;
- at ``expires_at`` (created + 24 h) if still running: requests not done become ``expired``.

Results are archived 29 days after creation: ``archived_at`` is set and the results file deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

from .clock import Clock, rfc3339
from .errors import ApiError, random_id

EXPIRY_SECONDS = 24 * 3600.0
ARCHIVE_SECONDS = 29 * 24 * 3600.0
BUCKETS = 16
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(value, out)
    os.replace(tmp, path)


def zero_counts(processing: int = 0) -> dict:
    return {"processing": processing, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}


class BatchStore:
    def __init__(self, root: Path, clock: Clock, *, cancel_seconds: float = 0.0) -> None:
        self.root = root
        self.clock = clock
        self.cancel_seconds = cancel_seconds
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._batch_locks: dict[str, threading.RLock] = {}
        self._metas: dict[str, dict] = {}
        for entry in root.iterdir():
            if entry.name.startswith(".tmp-"):
                # A create that never returned: the client got no id, so drop it.
                shutil.rmtree(entry, ignore_errors=True)
                continue
            meta_path = entry / "meta.json"
            if entry.is_dir() and meta_path.exists():
                meta = json.loads(meta_path.read_text())
                self._metas[meta["id"]] = meta
        self._next_seq = max((m["seq"] for m in self._metas.values()), default=0) + 1

    # ------------------------------------------------------------------ creating

    def new_batch_dir(self) -> tuple[str, Path]:
        batch_id = random_id("msgbatch_")
        tmp = self.root / f".tmp-{batch_id}"
        tmp.mkdir()
        return batch_id, tmp

    def next_seq(self) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def commit(self, tmp: Path, meta: dict) -> dict:
        _write_json(tmp / "meta.json", meta)
        os.replace(tmp, self.dir(meta["id"]))
        with self._lock:
            self._metas[meta["id"]] = meta
        return dict(meta)

    # ------------------------------------------------------------------ reading

    def dir(self, batch_id: str) -> Path:
        return self.root / batch_id

    def _batch_lock(self, batch_id: str) -> threading.RLock:
        with self._lock:
            return self._batch_locks.setdefault(batch_id, threading.RLock())

    def _meta(self, batch_id: str) -> dict:
        with self._lock:
            meta = self._metas.get(batch_id)
        if meta is None:
            raise ApiError(404, f"message_batch {batch_id!r} not found", error_type="not_found_error")
        return meta

    def get(self, batch_id: str) -> dict:
        """The batch's state after applying any due transition (404 when unknown)."""
        self._meta(batch_id)
        return self.refresh(batch_id)

    def ids_newest_first(self) -> list[str]:
        with self._lock:
            return [m["id"] for m in sorted(self._metas.values(), key=lambda m: -m["seq"])]

    def unfinished_ids(self) -> list[str]:
        """Batches whose worker pass is not done, oldest first (to resume after a restart)."""
        with self._lock:
            metas = sorted(self._metas.values(), key=lambda m: m["seq"])
        return [m["id"] for m in metas if not m.get("computed")]

    def queued_requests(self) -> int:
        with self._lock:
            ids = [m["id"] for m in self._metas.values() if m["status"] != "ended"]
        total = 0
        for batch_id in ids:
            try:
                meta = self.refresh(batch_id)
            except ApiError:
                continue
            if meta["status"] != "ended":
                total += meta["request_count"]
        return total

    def status_counts(self) -> dict:
        with self._lock:
            metas = list(self._metas.values())
        counts = {"in_progress": 0, "canceling": 0, "ended": 0}
        for meta in metas:
            counts[meta["status"]] = counts.get(meta["status"], 0) + 1
        return counts

    # ------------------------------------------------------------------ lifecycle

    def save(self, meta: dict) -> None:
        _write_json(self.dir(meta["id"]) / "meta.json", meta)
        with self._lock:
            self._metas[meta["id"]] = meta

    def mark_computed(self, batch_id: str, counts: dict) -> None:
        with self._batch_lock(batch_id):
            meta = dict(self._meta(batch_id))
            meta["computed"] = True
            meta["computed_at"] = self.clock.now()
            meta["computed_counts"] = counts
            self.save(meta)
        self.refresh(batch_id)

    def refresh(self, batch_id: str) -> dict:
        now = self.clock.now()
        with self._batch_lock(batch_id):
            meta = self._meta(batch_id)
            if meta["status"] != "ended" and meta.get("computed"):
                trigger = self._due_end(meta, now)
                if trigger is not None:
                    meta = self._finish(meta, *trigger)
            if meta["status"] == "ended" and meta.get("archived_at") is None:
                archive_at = meta["created_at"] + ARCHIVE_SECONDS
                if now >= archive_at:
                    meta = dict(meta, archived_at=archive_at)
                    self.save(meta)
                    (self.dir(batch_id) / "results.jsonl").unlink(missing_ok=True)
            return dict(meta)

    def _due_end(self, meta: dict, now: float) -> tuple[str, float] | None:
        """(reason, time) of the batch's end if it is due, else None."""
        candidates = []
        if not meta.get("never_finish"):
            candidates.append(("completed", meta["created_at"] + meta["processing_seconds"]))
        if meta.get("cancel_initiated_at") is not None:
            candidates.append(("canceled", meta["cancel_initiated_at"] + self.cancel_seconds))
        candidates.append(("expired", meta["expires_at"]))
        reason, when = min(candidates, key=lambda c: c[1])
        if when > now:
            return None
        if reason == "completed" and when > meta["expires_at"]:
            reason, when = "expired", meta["expires_at"]
        return reason, max(when, meta.get("computed_at") or when)

    def _finish(self, meta: dict, reason: str, when: float) -> dict:
        folder = self.dir(meta["id"])
        if reason == "completed":
            counts = dict(meta["computed_counts"])
        else:
            cutoff = meta["cancel_initiated_at"] if reason == "canceled" else meta["expires_at"]
            replacement = "canceled" if reason == "canceled" else "expired"
            counts = self._rebuild(meta, cutoff, replacement)
        counts["processing"] = 0
        meta = dict(meta, status="ended", ended_at=when, end_reason=reason, counts=counts)
        self.save(meta)
        # The work files are not needed once results are final.
        shutil.rmtree(folder / "buckets", ignore_errors=True)
        (folder / "requests.jsonl").unlink(missing_ok=True)
        return meta

    def _is_done(self, meta: dict, index: int, at: float) -> bool:
        if meta.get("never_finish"):
            return False
        processing = meta["processing_seconds"]
        if processing <= 0:
            return True
        done_at = meta["created_at"] + processing * (index + 1) / meta["request_count"]
        return done_at <= at

    def _rebuild(self, meta: dict, cutoff: float, replacement: str) -> dict:
        """Rewrite results.jsonl with not-done requests replaced; returns the counts."""
        folder = self.dir(meta["id"])
        counts = zero_counts()
        tmp = folder / "results.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            for index, custom_id, kind, line in self.iter_bucket_lines(meta["id"]):
                if not self._is_done(meta, index, cutoff):
                    kind = replacement
                    line = json.dumps({"custom_id": custom_id, "result": {"type": kind}})
                counts[kind] += 1
                out.write(line)
                out.write("\n")
        os.replace(tmp, folder / "results.jsonl")
        return counts

    def iter_bucket_lines(self, batch_id: str) -> Iterator[tuple[int, str, str, str]]:
        folder = self.dir(batch_id) / "buckets"
        for bucket in range(BUCKETS):
            path = folder / f"{bucket:02d}.jsonl"
            if not path.exists():
                continue
            with open(path, encoding="utf-8") as src:
                for raw in src:
                    index, custom_id, kind, line = raw.rstrip("\n").split("\t", 3)
                    yield int(index), custom_id, kind, line

    # ------------------------------------------------------------------ client calls

    def cancel(self, batch_id: str) -> dict:
        with self._batch_lock(batch_id):
            meta = self.refresh(batch_id)
            if meta["status"] == "ended":
                raise ApiError(
                    400,
                    f"message_batch {batch_id!r} has already ended and can no longer be canceled",
                )
            if meta["status"] == "canceling":
                return meta
            meta = dict(meta, status="canceling", cancel_initiated_at=self.clock.now())
            self.save(meta)
            return dict(meta)

    def delete(self, batch_id: str) -> None:
        with self._batch_lock(batch_id):
            meta = self.refresh(batch_id)
            if meta["status"] != "ended":
                raise ApiError(
                    400,
                    f"message_batch {batch_id!r} cannot be deleted while it is {meta['status']}; "
                    "cancel it and wait for it to end first",
                )
            with self._lock:
                self._metas.pop(batch_id, None)
            shutil.rmtree(self.dir(batch_id), ignore_errors=True)

    def results_path(self, batch_id: str) -> Path:
        meta = self.refresh(batch_id)
        if meta["status"] != "ended":
            raise ApiError(
                400, f"message_batch {batch_id!r} has not ended yet (status {meta['status']}): no results"
            )
        if meta.get("archived_at") is not None:
            raise ApiError(
                404,
                f"results of message_batch {batch_id!r} were archived at {rfc3339(meta['archived_at'])} "
                "and are no longer available",
                error_type="not_found_error",
            )
        return self.dir(batch_id) / "results.jsonl"

    # ------------------------------------------------------------------ API shape

    @staticmethod
    def api_object(meta: dict, base_url: str) -> dict:
        ended = meta["status"] == "ended"
        return {
            "id": meta["id"],
            "type": "message_batch",
            "processing_status": meta["status"],
            "request_counts": meta["counts"] if ended else zero_counts(meta["request_count"]),
            "ended_at": rfc3339(meta.get("ended_at")),
            "created_at": rfc3339(meta["created_at"]),
            "expires_at": rfc3339(meta["expires_at"]),
            "archived_at": rfc3339(meta.get("archived_at")),
            "cancel_initiated_at": rfc3339(meta.get("cancel_initiated_at")),
            "results_url": f"{base_url}/v1/messages/batches/{meta['id']}/results" if ended else None,
        }
