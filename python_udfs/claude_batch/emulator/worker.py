"""Background processing of batches: requests.jsonl -> result lines on disk, one line at a time.

A single thread takes batches in creation order and streams each request through the engine,
writing result lines into 16 bucket files (by a hash of custom_id) and then concatenating them
into ``results.jsonl``. Nothing is held in memory but the current line, so a 100,000-request batch
costs the same memory as a 10-request one. Requests are processed in order, so within a batch the
first request with a cacheable prefix writes the cache and later ones read it.

Stopping mid-batch leaves it unfinished on disk; the next start redoes it from the first line
(the pass is deterministic apart from cache state).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading

from .engine import Engine
from .errors import error_object
from .faults import pick_outcome
from .store import BUCKETS, BatchStore, zero_counts
from .validation import ParamsError

log = logging.getLogger("claude_batch.emulator")

_RETRYABLE = (("api_error", "Internal server error"), ("overloaded_error", "Overloaded"))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def bucket_of(custom_id: str) -> int:
    return hashlib.blake2b(custom_id.encode(), digest_size=1).digest()[0] % BUCKETS


class Worker:
    def __init__(self, store: BatchStore, engine: Engine) -> None:
        self.store = store
        self.engine = engine
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="emulator-batch-worker", daemon=True)
        self.processed_requests = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._running.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def enqueue(self, batch_id: str) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(batch_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every queued batch has been processed."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch_id = self._queue.get()
            if batch_id is None:
                break
            try:
                self._running.wait()
                if not self._stop.is_set():
                    self._process(batch_id)
            except Exception:  # keep serving other batches; the batch stays in_progress
                log.exception("batch %s failed in the emulator worker", batch_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _process(self, batch_id: str) -> None:
        try:
            meta = self.store.get(batch_id)
        except Exception:
            return  # deleted meanwhile
        if meta.get("computed"):
            return
        folder = self.store.dir(batch_id)
        buckets_dir = folder / "buckets"
        buckets_dir.mkdir(exist_ok=True)
        outs = [
            open(buckets_dir / f"{i:02d}.jsonl", "w", encoding="utf-8", buffering=1 << 20)
            for i in range(BUCKETS)
        ]
        counts = zero_counts()
        try:
            with open(folder / "requests.jsonl", encoding="utf-8") as requests:
                for index, raw in enumerate(requests):
                    if index % 512 == 0:
                        if self._stop.is_set():
                            return
                        self._running.wait()
                    item = json.loads(raw)
                    custom_id = item["custom_id"]
                    kind, line = self._result_line(meta, custom_id, item["params"])
                    counts[kind] += 1
                    outs[bucket_of(custom_id)].write(f"{index}\t{custom_id}\t{kind}\t{line}\n")
                    self.processed_requests += 1
        finally:
            for out in outs:
                out.close()
        # Final results assuming a normal end; cancel/expiry rebuild them from the buckets.
        tmp = folder / "results.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as out:
            for _, _, _, line in self.store.iter_bucket_lines(batch_id):
                out.write(line)
                out.write("\n")
        os.replace(tmp, folder / "results.jsonl")
        self.store.mark_computed(batch_id, counts)

    def _result_line(self, meta: dict, custom_id: str, params: object) -> tuple[str, str]:
        batch_id = meta["id"]
        forced = pick_outcome(meta.get("faults") or {}, meta["seq"], custom_id)
        if forced in ("expired", "canceled"):
            return forced, json.dumps({"custom_id": custom_id, "result": {"type": forced}})
        digest = _digest(batch_id, custom_id)
        if forced == "errored":
            error_type, message = _RETRYABLE[int(digest[0], 16) % 2]
            return "errored", self._errored(custom_id, error_type, message, digest)
        try:
            outcome = self.engine.run(
                params,  # type: ignore[arg-type]
                key_id=meta["key_id"],
                message_id="msg_" + digest[:24],
                service_tier="batch",
                in_batch=True,
            )
        except ParamsError as exc:
            # Inside a batch every params problem is an invalid_request_error line.
            return "errored", self._errored(custom_id, "invalid_request_error", exc.message, digest)
        result = {"type": "succeeded", "message": outcome.message}
        return "succeeded", json.dumps(
            {"custom_id": custom_id, "result": result}, ensure_ascii=False, separators=(",", ":")
        )

    @staticmethod
    def _errored(custom_id: str, error_type: str, message: str, digest: str) -> str:
        error = error_object(error_type, message, "req_" + digest[24:48])
        return json.dumps({"custom_id": custom_id, "result": {"type": "errored", "error": error}})
