"""The real-time path: concurrent Messages API calls, paced under the organisation's rate limits.

Used for small increments (``mode: realtime``, or ``mode: auto`` below ``realtime_threshold``) and by
the SQL UDF (plugin.py). Same requests as batch mode (prompts.build_params), same state tables and
cost columns; usage comes back with ``service_tier: standard``, i.e. full price.

Pacing. The API limits requests, input tokens and output tokens per minute (RPM, ITPM, OTPM).
:class:`Limits` keeps a client-side 60-second sliding window for each, so we rarely see a 429 at
all: a request is admitted when its estimated input (``tokens.count_request``) and its
``max_tokens`` fit the windows, and when it completes its reservation is replaced by the usage the
API reported (cache reads do not count against ITPM), stamped with the completion time, which is
never earlier than the server's own record. A sliding window also never overruns the token
bucket the real API uses. On top of that:

- the SDK's own retries stay on (429, 5xx, connection errors; it honours ``retry-after``);
- every 429/529 the SDK sees (through an HTTP response hook) pauses *all* admissions for its
  ``retry-after``, so one rejection does not become a burst of them;
- when the SDK gives up on a 429/529 we wait and try again a few more rounds; only then does the
  request become an ``errored`` result (``rate_limit_error``), which the pipeline retries later.
  An error never raises for one row.

Crash semantics of :func:`submit`: each chunk of requests is its own submission, recorded
``submitting`` and then ``in_progress`` (mode ``realtime``) before any call, and written in one
transaction when all its answers are in. A crash in between leaves it ``submitting``/``in_progress``
with no batch the API could list, so ``Pipeline.reconcile`` (which only looks at mode ``batch``)
cannot adopt it; :func:`abandon_leftovers` marks such leftovers ``abandoned`` at the start of the
next run, which puts their rows back to pending without using an attempt. Answers that arrived
before the crash are lost and paid for again: a chunk is at most ``CHUNK_REQUESTS`` requests, which
bounds that loss.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Coroutine, Sequence

import anthropic

from . import batches, collect, logs, packing, submissions, tokens
from ._crashpoints import checkpoint
from . import client as client_mod
from .client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S, make_async_client
from .errors import ApiContractError, ConfigError
from .logs import info, warn
from .runs import RunContext
from .statuses import BatchStatus, Outcome, PreflightStatus

if TYPE_CHECKING:
    from .state import StateStore

# Requests per submission: bounds what a crash can lose, and how much one state write carries.
CHUNK_REQUESTS = 100
# Errors that no retry or later run can fix without the user: stop sending further chunks.
FATAL_ERROR_TYPES = frozenset({"authentication_error", "permission_error", "billing_error", "not_found_error"})
PROGRESS_EVERY_S = 10.0

Answer = tuple[str, str, "dict | None", "dict | None"]  # (custom_id, result_type, message, error)


def _wall_clock() -> float:
    return time.monotonic()


# ---------------------------------------------------------------------------- pacing


class _Slot:
    """One admitted request in the windows: reserved amounts until it completes, then actuals."""

    __slots__ = ("at", "requests", "input_tokens", "output_tokens")

    def __init__(self, input_tokens: int, output_tokens: int) -> None:
        self.at: float | None = None  # None while in flight: counted in every window
        self.requests = 1
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


class _LoopState:
    """asyncio objects are bound to one event loop; Limits may be used from several in turn."""

    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.admit_lock = asyncio.Lock()
        self.changed = asyncio.Event()


@dataclass
class Limits:
    """Client-side limits for the Messages API, and the live windows that enforce them.

    Reuse one instance across calls (and threads) to keep pacing across them. ``None`` switches a
    limit off. ``clock``/``sleep`` default to real time; a test can pass the emulator's virtual
    clock and a sleep that advances it, so minutes of pacing take no wall time.
    """

    rpm: int | None = 50
    itpm: int | None = 40_000
    otpm: int | None = 8_000
    concurrency: int = 8
    max_retries: int = DEFAULT_MAX_RETRIES  # the SDK's own retries per call
    rate_limit_rounds: int = 3  # our extra rounds after the SDK gave up on a 429/529
    window_seconds: float = 60.0
    # Added to the window: the server may record a call a little after we do (network, clock skew).
    margin_seconds: float = 1.0
    clock: Callable[[], float] = _wall_clock
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    stats: dict = field(default_factory=lambda: {"requests": 0, "rate_limited": 0, "waits": 0, "waited_s": 0.0})

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("Limits.concurrency must be at least 1")
        self._slots: deque[_Slot] = deque()  # completed, in completion order
        self._in_flight: set[_Slot] = set()
        self._cool_until = float("-inf")
        self._lock = threading.Lock()
        self._loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def from_config(cls, cfg: Any) -> "Limits":
        """From a ClassifierConfig's realtime_* settings."""
        return cls(
            rpm=cfg.realtime_rpm,
            itpm=cfg.realtime_itpm,
            otpm=cfg.realtime_otpm,
            concurrency=cfg.realtime_concurrency,
        )

    # -- loop-bound objects
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _LoopState(self.concurrency)
        return state

    # -- windows
    def _prune(self, now: float) -> None:
        horizon = now - self.window_seconds - self.margin_seconds
        while self._slots and self._slots[0].at is not None and self._slots[0].at <= horizon:
            self._slots.popleft()

    def _wait_for(self, now: float, need_in: int, need_out: int) -> float | None:
        """Seconds until a request needing these amounts fits; 0 now; None: wait for a completion."""
        wait = max(0.0, self._cool_until - now)
        for limit, amount, attr in (
            (self.rpm, 1, "requests"),
            (self.itpm, need_in, "input_tokens"),
            (self.otpm, need_out, "output_tokens"),
        ):
            if not limit:
                continue
            flying = sum(getattr(s, attr) for s in self._in_flight)
            done = [(s.at, getattr(s, attr)) for s in self._slots]
            used = flying + sum(a for _, a in done)
            # A request bigger than the whole limit goes alone once everything has drained.
            room_needed = min(amount, limit)
            if used + room_needed <= limit and not (amount > limit and used > 0):
                continue
            if amount > limit:
                if flying:
                    return None
                wait = max(wait, done[-1][0] + self.window_seconds + self.margin_seconds - now)
                continue
            if flying + room_needed > limit:
                return None  # only a completion can make room
            excess = used + room_needed - limit
            for at, freed in done:
                excess -= freed
                if excess <= 0:
                    wait = max(wait, at + self.window_seconds + self.margin_seconds - now)
                    break
        return wait

    async def acquire(self, input_tokens: int, output_tokens: int) -> _Slot:
        """Wait until a request with these estimates fits every window, then reserve it."""
        state = self._state()
        async with state.admit_lock:  # first come, first served: no starvation of big requests
            while True:
                with self._lock:
                    now = self.clock()
                    self._prune(now)
                    wait = self._wait_for(now, input_tokens, output_tokens)
                    if wait is not None and wait <= 0:
                        slot = _Slot(input_tokens, output_tokens)
                        self._in_flight.add(slot)
                        self.stats["requests"] += 1
                        return slot
                    state.changed.clear()
                self.stats["waits"] += 1
                if wait is None:
                    await state.changed.wait()
                    continue
                self.stats["waited_s"] += wait
                sleeper = asyncio.ensure_future(self.sleep(wait))
                changed = asyncio.ensure_future(state.changed.wait())
                try:
                    await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (sleeper, changed):
                        if not task.done():
                            task.cancel()

    def settle(self, slot: _Slot, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """The request completed: keep what it really used, from now (never earlier than the server)."""
        with self._lock:
            self._in_flight.discard(slot)
            if input_tokens is not None:
                slot.input_tokens = input_tokens
            if output_tokens is not None:
                slot.output_tokens = output_tokens
            slot.at = self.clock()
            self._slots.append(slot)
        self._notify()

    def note_rate_limited(self, retry_after: float, *, count: bool = True) -> None:
        """A 429/529 came back: hold every admission for ``retry_after`` seconds."""
        with self._lock:
            if count:
                self.stats["rate_limited"] += 1
            self._cool_until = max(self._cool_until, self.clock() + max(retry_after, 0.0))
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            states = list(self._loops.items())
        for loop, state in states:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is running:
                state.changed.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(state.changed.set)


def _retry_after(headers: Any, default: float = 1.0) -> float:
    if headers is None:
        return default
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except (TypeError, ValueError):
            continue
    return default


def make_client(limits: Limits, *, base: Any | None = None, timeout: float | None = None) -> anthropic.AsyncAnthropic:
    """An AsyncAnthropic whose every 429/529 response (SDK retries included) pauses ``limits``.

    ``base``: a client to copy the API key and base URL from (e.g. the pipeline's sync client);
    otherwise both come from the environment, as everywhere else (client.py).
    """

    async def on_response(response: Any) -> None:
        if response.status_code in (429, 529):
            limits.note_rate_limited(_retry_after(response.headers))

    http_client = anthropic.DefaultAsyncHttpxClient(event_hooks={"response": [on_response]})
    if base is not None and getattr(base, "api_key", None):
        return anthropic.AsyncAnthropic(
            api_key=base.api_key, base_url=base.base_url, max_retries=limits.max_retries,
            timeout=timeout if timeout is not None else base.timeout, http_client=http_client,
            default_headers=getattr(base, "_custom_headers", None) or None,  # a pinned anthropic-version
        )
    client = make_async_client(max_retries=limits.max_retries, timeout=timeout or DEFAULT_TIMEOUT_S)
    # make_async_client checks the key; rebuild with the hook on the same settings.
    return client.with_options(http_client=http_client)


# ---------------------------------------------------------------------------- calls

_CREATE_PARAMS = frozenset(inspect.signature(anthropic.resources.messages.AsyncMessages.create).parameters) - {
    "self", "extra_headers", "extra_query", "extra_body", "timeout", "stream",
}


def _split_params(params: dict) -> tuple[dict, dict]:
    """Keyword arguments the SDK knows, and the rest sent as they are (newer API fields)."""
    known = {k: v for k, v in params.items() if k in _CREATE_PARAMS}
    extra = {k: v for k, v in params.items() if k not in _CREATE_PARAMS}
    return known, extra


def _error_dict(error_type: str, message: str, request_id: str | None = None) -> dict:
    # The shape of a batch result's error, so collect.stage_message reads both paths alike.
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def _status_error(exc: anthropic.APIStatusError) -> dict:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else {}
    etype = inner.get("type") or {429: "rate_limit_error", 529: "overloaded_error"}.get(exc.status_code) or (
        "invalid_request_error" if 400 <= exc.status_code < 500 else "api_error"
    )
    return _error_dict(etype, inner.get("message") or str(exc.message), getattr(exc, "request_id", None))


async def _answer_one(client: Any, custom_id: str, params: dict, limits: Limits, state: _LoopState) -> Answer:
    known, extra = _split_params(params)
    need_in = tokens.count_request(params)
    need_out = int(params.get("max_tokens") or 0)
    rounds = 0
    async with state.semaphore:
        while True:
            slot = await limits.acquire(need_in, need_out)
            try:
                message = await client.messages.create(**known, extra_body=extra or None)
            except anthropic.APIStatusError as exc:
                limits.settle(slot, 0, 0)
                if exc.status_code in (429, 529) and rounds < limits.rate_limit_rounds:
                    # The SDK already retried and gave up; pause everyone, then try again.
                    rounds += 1
                    # (the response hook, when the client has it, already counted this 429)
                    limits.note_rate_limited(_retry_after(exc.response.headers if exc.response else None),
                                             count=False)
                    continue
                return custom_id, Outcome.ERRORED, None, _status_error(exc)
            except anthropic.APITimeoutError as exc:
                limits.settle(slot)
                return custom_id, Outcome.ERRORED, None, _error_dict("timeout_error", str(exc))
            except anthropic.APIConnectionError as exc:
                limits.settle(slot)
                return custom_id, Outcome.ERRORED, None, _error_dict("api_error", f"connection failed: {exc}")
            except Exception as exc:  # never raise for one row; the pipeline retries errored rows
                limits.settle(slot, 0, 0)
                return custom_id, Outcome.ERRORED, None, _error_dict("api_error", f"{type(exc).__name__}: {exc}")
            except BaseException:
                limits.settle(slot, 0, 0)
                raise
            data = message.model_dump(mode="json") if hasattr(message, "model_dump") else dict(message)
            usage = data.get("usage") or {}
            if not usage.get("service_tier"):
                usage["service_tier"] = "standard"  # real-time calls are billed at the standard rate
                data["usage"] = usage
            used_in = int(usage.get("input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0)
            limits.settle(slot, used_in, int(usage.get("output_tokens") or 0))
            return custom_id, Outcome.SUCCEEDED, data, None


async def iter_answers(
    client: Any, requests: Sequence[tuple[str, dict]], limits: Limits,
) -> AsyncIterator[Answer]:
    """Answers in completion order: (custom_id, "succeeded" | "errored", message dict, error dict)."""
    state = limits._state()
    tasks = [asyncio.ensure_future(_answer_one(client, cid, params, limits, state)) for cid, params in requests]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def answer_all(
    client: Any,
    requests: Sequence[tuple[str, dict]],
    limits: Limits,
    *,
    on_answer: Callable[[Answer], None] | None = None,
) -> list[Answer]:
    """Every request answered, in the order given; ``on_answer`` sees each as it completes."""
    got: dict[str, Answer] = {}
    async for answer in iter_answers(client, requests, limits):
        got[answer[0]] = answer
        if on_answer is not None:
            on_answer(answer)
    return [got[cid] for cid, _ in requests]


# ---------------------------------------------------------------------------- running from sync code


class LoopThread:
    """An event loop in a daemon thread: sync callers (dbt models, DuckDB UDF threads) run
    coroutines on it and block on the result; one loop lets one client and one set of
    loop-bound limits serve them all."""

    def __init__(self, name: str = "claude-batch-realtime") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.submit(coro).result()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


# ---------------------------------------------------------------------------- pipeline entry points


def _now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _Progress:
    """Requests done and texts per second, logged at most every PROGRESS_EVERY_S (any thread)."""

    def __init__(self, total_requests: int, total_texts: int, texts_of: dict[str, int]) -> None:
        self._info = logs.bound()[0]  # called on the loop thread: keep the caller's log
        self.total_requests = total_requests
        self.total_texts = total_texts
        self.texts_of = texts_of
        self.requests = 0
        self.texts = 0
        self.errored = 0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"realtime: {self.requests}/{self.total_requests} request(s) answered "
            f"({self.texts}/{self.total_texts} text(s), {self.errored} errored), {self.texts / elapsed:,.1f} texts/s"
        )

    def __call__(self, answer: Answer) -> None:
        with self._lock:
            self.requests += 1
            self.texts += self.texts_of.get(answer[0], 0)
            self.errored += answer[1] != Outcome.SUCCEEDED
            now = time.monotonic()
            due = now - self._last >= PROGRESS_EVERY_S
            if due:
                self._last = now
        if due:
            self._info(self.line())


def submit(pipe: RunContext, planned: list[packing.PlannedRequest], prefix: int, cached: bool) -> None:
    """Answer ``planned`` now, chunk by chunk, each chunk its own submission (see the module doc).

    Called by ``Pipeline.submit`` when the mode resolves to realtime. Writes the same tables as a
    collected batch (``collect.apply_staging``) and adds to ``pipe.run``.
    """
    cfg = pipe.cfg
    spec, model = cfg.spec, cfg.spec.model
    limits = Limits.from_config(cfg)
    chunks = [planned[i : i + CHUNK_REQUESTS] for i in range(0, len(planned), CHUNK_REQUESTS)]
    base_seq = pipe.store.next_intent_seq(cfg.name)
    progress = _Progress(len(planned), sum(len(p.items) for p in planned), {})
    info(
        f"realtime: {progress.total_texts} text(s) in {len(planned)} request(s), {len(chunks)} submission(s); "
        f"limits {limits.rpm} RPM, {limits.itpm} input TPM, {limits.otpm} output TPM, "
        f"{limits.concurrency} at once"
    )
    base_client = pipe.given_client if isinstance(pipe.given_client, anthropic.Anthropic) else None
    runner = LoopThread()
    client = None
    in_flight: list[concurrent.futures.Future] = []
    try:
        client = runner.run(_build_client(limits, base_client, pipe.given_client))

        def start(n: int, chunk: list[packing.PlannedRequest]) -> tuple[str, list, concurrent.futures.Future]:
            sub_key = packing.submission_key_sql(pipe.wh, cfg.version, base_seq + n,
                                                 chunk[0].req_no, chunk[-1].req_no)
            for index, p in enumerate(chunk):  # custom_ids carry their submission key
                p.custom_id = packing.custom_id(sub_key, index)
                progress.texts_of[p.custom_id] = len(p.items)
            body_bytes = sum(batches.request_bytes({"custom_id": p.custom_id, "params": p.params}) for p in chunk)
            submissions.record_intent(pipe, sub_key, chunk, body_bytes, prefix, cached, mode="realtime")
            checkpoint("after_intent")
            pipe.store.record_submitted(sub_key, {
                "id": f"rt_{sub_key}", "processing_status": BatchStatus.IN_PROGRESS, "created_at": _now_utc(),
                "expires_at": None,
            })
            checkpoint("after_submitted")
            pipe.run.submitted_batches += 1
            pipe.run.submitted_requests += len(chunk)
            pipe.run.submitted_texts += sum(len(p.items) for p in chunk)
            reqs = [(p.custom_id, p.params) for p in chunk]
            future = runner.submit(answer_all(client, reqs, limits, on_answer=progress))
            in_flight.append(future)
            return sub_key, chunk, future

        def finish(sub_key: str, chunk: list[packing.PlannedRequest], future: concurrent.futures.Future) -> bool:
            """Write one chunk's answers (on this thread: one DuckDB connection); False: stop sending."""
            answers = future.result()
            staging = collect.Staging()
            counts = {Outcome.SUCCEEDED: 0, Outcome.ERRORED: 0}
            fatal: set[str] = set()
            for (custom_id, result_type, message, error), p in zip(answers, chunk):
                collect.stage_message(staging, spec, model, custom_id, len(p.items), result_type, message, error)
                counts[result_type] = counts.get(result_type, 0) + 1
                etype = ((error or {}).get("error") or {}).get("type")
                if etype in FATAL_ERROR_TYPES:
                    fatal.add(etype)
            pipe.store.update_batch_status(sub_key, {
                "processing_status": BatchStatus.ENDED, "ended_at": _now_utc(), "request_counts": counts,
            })
            got = collect.apply_staging(pipe.store, staging, sub_key, classifier=cfg.name,
                                        batch_id=f"rt_{sub_key}", model=model)
            checkpoint("after_collect_write")
            pipe.run.collected_requests += got.requests
            pipe.run.collected_items += got.texts
            pipe.run.billed_usd += got.billed_usd
            pipe.run.naive_usd += got.naive_usd
            info(f"realtime submission {sub_key}: {got.texts} text(s) written, billed ${got.billed_usd:.4f}; "
                 + progress.line())
            if fatal and counts[Outcome.SUCCEEDED] == 0:
                warn(f"realtime: every request of submission {sub_key} failed with {sorted(fatal)}; "
                     "the remaining rows are not sent and stay pending. Fix the key, model or permissions.")
                return False
            return True

        # One chunk in flight while the previous one is written, so the limits stay busy.
        pending = None
        stopped = False
        for n, chunk in enumerate(chunks):
            current = start(n, chunk)
            if pending is not None and not finish(*pending):
                stopped = True
                current[2].result()  # already sent: its answers are written, then we stop
                finish(*current)
                pending = None
                break
            pending = current
        if pending is not None:
            finish(*pending)
        if stopped:
            pipe.run.notes.append("realtime stopped early on a fatal API error")
        if limits.stats["rate_limited"]:
            warn(f"realtime: the API rate-limited {limits.stats['rate_limited']} call(s) despite pacing; "
                 "lower realtime_rpm / realtime_itpm / realtime_otpm to your organisation's limits")
    finally:
        for future in in_flight:  # on an error: stop the calls nobody will write
            future.cancel()
        if client is not None and client is not pipe.given_client:
            try:
                runner.run(client.close())
            except Exception:  # closing must not hide the real error
                pass
        runner.close()


# A preflight refused with one of these means our requests (or key, or model) disagree with the API:
# the run fails at once. Anything else (rate limits, overload, timeouts) says nothing about the request.
PREFLIGHT_FATAL = FATAL_ERROR_TYPES | {"invalid_request_error"}


def preflight(pipe: RunContext, request: packing.PlannedRequest, prefix: int, cached: bool) -> None:
    """Send the first pack of a batch submission as one real-time Messages call, before any batch.

    The API checks a batch's requests only when it processes them (up to 24 hours later [BAT]), and
    a rejected one is then an ``errored`` row; a real-time call is checked now. A refusal fails the
    run with the API's message, its rows pending again and nothing else sent; an answer is written
    like any real-time answer (those rows are done: nothing is paid twice). Recorded in cb_preflights.
    """
    cfg, store = pipe.cfg, pipe.store
    sub_key = packing.submission_key_sql(pipe.wh, cfg.version, store.next_intent_seq(cfg.name),
                                         request.req_no, request.req_no)
    request.custom_id = packing.custom_id(sub_key, 0)
    body_bytes = batches.request_bytes({"custom_id": request.custom_id, "params": request.params})
    submissions.record_intent(pipe, sub_key, [request], body_bytes, prefix, cached, mode="realtime")
    store.record_submitted(sub_key, {"id": f"rt_{sub_key}", "processing_status": BatchStatus.IN_PROGRESS,
                                     "created_at": _now_utc(), "expires_at": None})
    checkpoint("after_preflight_intent")
    limits = Limits.from_config(cfg)
    base_client = pipe.given_client if isinstance(pipe.given_client, anthropic.Anthropic) else None
    runner = LoopThread()
    try:
        client = runner.run(_build_client(limits, base_client, pipe.given_client))
        try:
            [(custom_id, result_type, message, error)] = runner.run(
                answer_all(client, [(request.custom_id, request.params)], limits))
        finally:
            if client is not pipe.given_client:
                runner.run(client.close())
    finally:
        runner.close()
    row = {"classifier": cfg.name, "version": cfg.version, "model": cfg.spec.model,
           "api_version": client_mod.sent_api_version(pipe.client), "sdk_version": anthropic.__version__,
           "custom_id": custom_id}
    inner = (error or {}).get("error") or {}
    if result_type == Outcome.ERRORED and inner.get("type") in PREFLIGHT_FATAL:
        message_text = f"{inner.get('type')}: {inner.get('message')}"
        store.record_abandoned(sub_key, f"preflight refused by the API: {message_text}")
        store.record_preflight({**row, "status": PreflightStatus.REJECTED, "message": message_text})
        raise ApiContractError(
            f"preflight: the API refused this classifier's first request ({message_text}); no batch was "
            f"created and nothing else was sent. Model {cfg.spec.model!r}, anthropic-version {row['api_version']}.")
    staging = collect.Staging()
    collect.stage_message(staging, cfg.spec, cfg.spec.model, custom_id, len(request.items), result_type, message, error)
    store.update_batch_status(sub_key, {"processing_status": BatchStatus.ENDED, "ended_at": _now_utc(),
                                        "request_counts": {result_type: 1}})
    got = collect.apply_staging(store, staging, sub_key, classifier=cfg.name, batch_id=f"rt_{sub_key}",
                                model=cfg.spec.model)
    pipe.run.submitted_batches += 1
    pipe.run.submitted_requests += 1
    pipe.run.submitted_texts += len(request.items)
    pipe.run.collected_requests += got.requests
    pipe.run.collected_items += got.texts
    pipe.run.billed_usd += got.billed_usd or 0.0
    pipe.run.naive_usd += got.naive_usd or 0.0
    if result_type == Outcome.SUCCEEDED:
        store.record_preflight({**row, "status": PreflightStatus.PASSED, "message": None})
        info(f"preflight passed: the API answered the first request of version {cfg.version} in real time "
             f"({got.texts} text(s) written)")
    else:  # overloaded, rate-limited, a timeout: not a verdict on our request; try again next run
        warn(f"preflight inconclusive ({inner.get('type')}: {inner.get('message')}); batches go ahead")


async def _build_client(limits: Limits, base: Any | None, given: Any | None) -> Any:
    # Built on the loop thread: the HTTP connection pool belongs to that loop.
    if isinstance(given, anthropic.AsyncAnthropic):
        return given
    return make_client(limits, base=base)


def abandon_leftovers(store: "StateStore", classifier: str) -> int:
    """Real-time submissions a crashed run left ``submitting``/``in_progress``/``ended``: give them up.

    No batch exists for them on the API side, so nothing can be adopted; their rows go back to
    pending (no attempt used). Call under the classifier's lock, before anything is submitted.
    A chunk whose answers were written (killed before its collected mark) is finished instead.
    Returns how many submissions were abandoned.
    """
    rows = store.wh.fetchall(
        f"""SELECT submission_key, item_count FROM {store.t['cb_batches']}
            WHERE classifier = ? AND mode = 'realtime' AND status IN ('submitting', 'in_progress', 'ended')
            ORDER BY intent_at""",
        [classifier],
    )
    abandoned = 0
    for sub_key, item_count in rows:
        if store.wh.scalar(f"SELECT count(*) FROM {store.t['cb_results']} WHERE "
                           + store.wh.starts_with_sql("custom_id", f"{sub_key}-")):
            # Killed after the chunk's answers were written, before it was marked: finish the mark.
            collect.finish_collect(store, sub_key)
            info(f"real-time submission {sub_key}: its answers were written before a crash; marked collected")
            continue
        store.record_abandoned(
            sub_key, "real-time run ended before its answers were written; its rows are pending again"
        )
        info(f"real-time submission {sub_key} was cut short by a crash; its {item_count} text(s) are pending again")
        abandoned += 1
    return abandoned
