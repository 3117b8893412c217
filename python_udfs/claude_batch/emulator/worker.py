"""Background processing of batches: requests.jsonl -> result lines on disk, streamed.

One thread takes batches in creation order and streams each request line through the engine,
writing result lines into 16 bucket files (by a hash of custom_id), then concatenates them into
``results.jsonl``. Only a bounded window of lines is ever in memory, so a 100,000-request batch
costs the same memory as a 10-request one.

Speed: the CPU-heavy, pure part of answering (parsing, checks, token counting, the responder) runs
in helper processes (helpers.py) for large batches (``PARALLEL_MIN_REQUESTS`` and up, no responder
hook set); cache accounting and result lines are done here, strictly in request order, so within
a batch the first request with a cacheable prefix writes the cache and later ones read it. Small
batches, and any batch while a Python responder hook is set, are computed in this thread.

Every request is judged by the API version the batch was created with (``api_version`` in its
meta.json, also after a restart [MIG]) and, for retired models, by the virtual clock's day when the
worker processes the batch.

Stopping mid-batch leaves it unfinished on disk; the next start redoes it from the first line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from datetime import date
from itertools import islice
from typing import Iterable, Iterator

from .caching import PromptCache
from .engine import Prepared, finish, prepare
from .errormodel import ErrorModel
from .errors import error_object
from .faults import pick_outcome
from .helpers import HelperError, HelperPool
from .responder import Responder
from .store import BUCKETS, BatchStore, zero_counts
from .validation import ParamsError
from .versions import LEGACY_BATCH_VERSION, day_of

log = logging.getLogger("claude_batch.emulator")

PARALLEL_MIN_REQUESTS = 2000
CHUNK_LINES = 500
_RETRYABLE = (("api_error", "Internal server error"), ("overloaded_error", "Overloaded"))

# (index, custom_id, prepared or None, (error type, message) of a params problem or None)
Computed = tuple[int, str, "tuple | None", "tuple[str, str] | None"]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def bucket_of(custom_id: str) -> int:
    return hashlib.blake2b(custom_id.encode(), digest_size=1).digest()[0] % BUCKETS


def compute_lines(
    responder: Responder, lines: Iterable[tuple[int, str]], *, api_version: str, day: date,
    errors: dict | None = None,
) -> list[Computed]:
    """The pure part of a chunk of request lines (runs here or in a helper process). ``errors``: the
    batch's ``answer_errors`` configuration (errormodel.py), None when off."""
    model = ErrorModel.from_config(errors)
    out: list[Computed] = []
    for index, raw in lines:
        item = json.loads(raw)
        try:
            # tuple(): a plain tuple pickles several times faster than a NamedTuple instance.
            prepared = tuple(
                prepare(item["params"], responder, in_batch=True, api_version=api_version, day=day, errors=model)
            )
            out.append((index, item["custom_id"], prepared, None))
        except ParamsError as exc:
            out.append((index, item["custom_id"], None, (exc.error_type, exc.message)))
    return out


def batch_api_version(meta: dict) -> str:
    """The anthropic-version a batch was created with (its requests are judged by it [MIG])."""
    return meta.get("api_version") or LEGACY_BATCH_VERSION


class Worker:
    def __init__(
        self, store: BatchStore, cache: PromptCache, responder: Responder, *, processes: int | None = None
    ) -> None:
        self.store = store
        self.cache = cache
        self.responder = responder
        if processes is None:
            # While a batch is processed its client is only polling, so the cores are ours.
            cpus = os.cpu_count() or 1
            processes = min(4, cpus) if cpus >= 2 else 0
        self.processes = processes
        self._pool = HelperPool(self.processes) if self.processes > 1 else None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="emulator-batch-worker", daemon=True)
        self.processed_requests = 0
        self.batches_in_helpers = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._running.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.close()

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
            except Exception:  # keep serving other batches; this one stays in_progress
                log.exception("batch %s failed in the emulator worker", batch_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    # ------------------------------------------------------------------ computing

    def _checkpoint(self) -> bool:
        """Honour pause; False when stopping."""
        if self._stop.is_set():
            return False
        self._running.wait()
        return not self._stop.is_set()

    def _chunks(self, lines: Iterator[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
        while True:
            chunk = list(islice(lines, CHUNK_LINES))
            if not chunk or not self._checkpoint():
                return
            yield chunk

    def _computed(
        self, lines: Iterator[tuple[int, str]], parallel: bool, api_version: str, day: date,
        errors: dict | None = None,
    ) -> Iterator[Computed]:
        if parallel and self._pool is not None:
            self.batches_in_helpers += 1
            script = self.responder.script_snapshot()
            for computed in self._pool.map_ordered(self._chunks(lines), script, (api_version, day, errors)):
                yield from computed
        else:
            for chunk in self._chunks(lines):
                yield from compute_lines(self.responder, chunk, api_version=api_version, day=day, errors=errors)

    def _process(self, batch_id: str) -> None:
        try:
            meta = self.store.get(batch_id)
        except Exception:
            return  # deleted meanwhile
        if meta.get("computed"):
            return
        parallel = (
            self._pool is not None
            and meta["request_count"] >= PARALLEL_MIN_REQUESTS
            and not self.responder.has_hook
        )
        try:
            self._pass(meta, parallel)
        except HelperError:
            # Redo the batch here. Cache entries written before the failure stay, so some
            # requests may read what they would have written: acceptable for a rare failure.
            log.warning("emulator helper processes failed; computing batch %s in-process", batch_id, exc_info=True)
            self._pass(meta, False)

    def _pass(self, meta: dict, parallel: bool) -> None:
        batch_id = meta["id"]
        folder = self.store.dir(batch_id)
        buckets_dir = folder / "buckets"
        buckets_dir.mkdir(exist_ok=True)
        outs = [
            open(buckets_dir / f"{i:02d}.jsonl", "w", encoding="utf-8", buffering=1 << 20)
            for i in range(BUCKETS)
        ]
        counts = zero_counts()
        done = 0
        try:
            with open(folder / "requests.jsonl", encoding="utf-8") as requests:
                api_version, day = batch_api_version(meta), day_of(self.store.clock.now())
                # The error model as it was when the batch was created (like the other batch faults).
                errors = (meta.get("faults") or {}).get("answer_errors")
                computed = self._computed(enumerate(requests), parallel, api_version, day, errors)
                for index, custom_id, prepared, problem in computed:
                    kind, line = self._result_line(meta, custom_id, prepared, problem)
                    counts[kind] += 1
                    outs[bucket_of(custom_id)].write(f"{index}\t{custom_id}\t{kind}\t{line}\n")
                    done += 1
                    self.processed_requests += 1
        finally:
            for out in outs:
                out.close()
        if done != meta["request_count"]:
            return  # stopped part-way: redone from the start next time
        # Final results assuming a normal end; cancel/expiry rebuild them from the buckets.
        tmp = folder / "results.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as out:
            for _, _, _, line in self.store.iter_bucket_lines(batch_id):
                out.write(line)
                out.write("\n")
        os.replace(tmp, folder / "results.jsonl")
        self.store.mark_computed(batch_id, counts)

    def _result_line(
        self, meta: dict, custom_id: str, prepared: tuple | None, problem: tuple[str, str] | None
    ) -> tuple[str, str]:
        batch_id = meta["id"]
        forced = pick_outcome(meta.get("faults") or {}, meta["seq"], custom_id)
        if forced in ("expired", "canceled"):
            return forced, json.dumps({"custom_id": custom_id, "result": {"type": forced}})
        digest = _digest(batch_id, custom_id)
        if forced == "errored":
            error_type, message = _RETRYABLE[int(digest[0], 16) % 2]
            return "errored", self._errored(custom_id, error_type, message, digest)
        if prepared is None:
            # A params problem is an errored line with the error the API would have answered:
            # invalid_request_error, or not_found_error for a retired model (validation._check_model).
            error_type, message = problem or ("invalid_request_error", "")
            return "errored", self._errored(custom_id, error_type, message, digest)
        outcome = finish(
            Prepared(*prepared), self.cache, key_id=meta["key_id"], message_id="msg_" + digest[:24], service_tier="batch"
        )
        return "succeeded", (
            f'{{"custom_id":"{custom_id}","result":{{"type":"succeeded","message":{outcome.message_json}}}}}'
        )

    @staticmethod
    def _errored(custom_id: str, error_type: str, message: str, digest: str) -> str:
        error = error_object(error_type, message, "req_" + digest[24:48])
        return json.dumps({"custom_id": custom_id, "result": {"type": "errored", "error": error}})
