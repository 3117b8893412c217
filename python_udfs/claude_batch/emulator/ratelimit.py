"""Rate limits: sliding 60-second windows on the virtual clock.

Limits come from the fault configuration (see faults.py) and are read on every call, so a test can
switch them on and off. Advancing the clock by 60 s empties every window.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from .clock import Clock
from .errors import ApiError
from .faults import Faults

WINDOW_SECONDS = 60.0


class _Window:
    """Amounts recorded with their time; the sum over the last minute."""

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def prune(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - WINDOW_SECONDS:
            _, amount = self.events.popleft()
            self.total -= amount

    def add(self, now: float, amount: int) -> None:
        if amount:
            self.events.append((now, amount))
            self.total += amount

    def wait_for(self, now: float, room_needed: int, limit: int) -> float:
        """Seconds until enough old amounts leave the window to fit ``room_needed``."""
        excess = self.total + room_needed - limit
        for when, amount in self.events:
            excess -= amount
            if excess <= 0:
                return max(0.0, when + WINDOW_SECONDS - now)
        return WINDOW_SECONDS


def _too_many(message: str, wait: float) -> ApiError:
    return ApiError(429, message, headers={"retry-after": str(max(1, math.ceil(wait)))})


class RateLimiter:
    def __init__(self, clock: Clock, faults: Faults) -> None:
        self._clock = clock
        self._faults = faults
        self._lock = threading.Lock()
        self._message_calls = _Window()
        self._input_tokens = _Window()
        self._output_tokens = _Window()
        self._batch_calls = _Window()

    def check_message(self) -> None:
        """Admit one /v1/messages call, or raise a 429.

        Token limits refuse a call while the last minute's tokens have reached the limit (the real
        API estimates ahead; counting after the fact keeps the emulator simple and deterministic).
        Input tokens counted are uncached input plus cache writes; cache reads are free, as for
        current models.
        """
        rpm = self._faults.get("messages_rpm")
        itpm = self._faults.get("messages_itpm")
        otpm = self._faults.get("messages_otpm")
        with self._lock:
            now = self._clock.now()
            for window in (self._message_calls, self._input_tokens, self._output_tokens):
                window.prune(now)
            if rpm and self._message_calls.total + 1 > rpm:
                raise _too_many(
                    f"This request would exceed the rate limit of {rpm} requests per minute.",
                    self._message_calls.wait_for(now, 1, rpm),
                )
            if itpm and self._input_tokens.total >= itpm:
                raise _too_many(
                    f"This request would exceed the rate limit of {itpm} input tokens per minute.",
                    self._input_tokens.wait_for(now, 1, itpm),
                )
            if otpm and self._output_tokens.total >= otpm:
                raise _too_many(
                    f"This request would exceed the rate limit of {otpm} output tokens per minute.",
                    self._output_tokens.wait_for(now, 1, otpm),
                )
            self._message_calls.add(now, 1)

    def record_message_tokens(self, input_tokens: int, output_tokens: int) -> None:
        with self._lock:
            now = self._clock.now()
            self._input_tokens.add(now, input_tokens)
            self._output_tokens.add(now, output_tokens)

    def check_batch_call(self) -> None:
        rpm = self._faults.get("batch_rpm")
        with self._lock:
            now = self._clock.now()
            self._batch_calls.prune(now)
            if rpm and self._batch_calls.total + 1 > rpm:
                raise _too_many(
                    f"This request would exceed the rate limit of {rpm} batch API requests per minute.",
                    self._batch_calls.wait_for(now, 1, rpm),
                )
            self._batch_calls.add(now, 1)

    def check_queue(self, queued: int, incoming: int) -> None:
        cap = self._faults.get("queue_cap")
        if cap and queued + incoming > cap:
            raise ApiError(
                429,
                f"Number of requests in the processing queue would exceed the limit of {cap} "
                f"({queued} queued, {incoming} in this batch).",
                headers={"retry-after": str(int(WINDOW_SECONDS))},
            )
