"""The budget guard and the pacing of batch creates: how many planned requests a run may send, and when.

``Guard`` prices the planned requests (columns, not a loop) and admits the first ones until the
per-run or per-day budget or the processing-queue cap would be passed; ``Pacer`` spaces the
batch-endpoint calls under one requests-per-minute limit.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import cost, packing, prompts, tokens
from . import estimate as estimate_mod
from .logs import info, warn
from .runs import RunContext


class Pacer:
    """Client-side pacing of batch-endpoint calls (one RPM limit across them)."""

    def __init__(self, rpm: int):
        self.gap = 60.0 / rpm if rpm else 0.0
        self.next_at = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.gap


class Guard:
    """Budget guard and processing-queue cap, applied to the planned requests in order.

    The estimate is an upper bound (docs/cost.md): the prefix (written once at the cache-write price,
    then read) and the rows' input tokens from ``estimate.py`` (local counter, or calibrated with the
    API's count_tokens when ``count_tokens_api`` is on), and ``max_tokens`` of output per request.
    """

    def __init__(self, pipe: RunContext, prefix: int, cached: bool, *, batch: bool, preflight: bool = False):
        self.pipe, self.prefix, self.cached, self.batch = pipe, prefix, cached, batch
        self.preflight = preflight  # the first request goes as a real-time call, at standard prices
        cfg = pipe.cfg
        self.limit = self.run_limit(pipe)
        self.room = None if cfg.queue_cap is None else max(cfg.queue_cap - pipe.store.in_flight_requests(), 0)
        self.admitted = self.admitted_texts = 0
        self.refused = self.refused_texts = 0
        self.reason: str | None = None
        self.spent = 0.0
        self.calibration: estimate_mod.Calibration | None = None

    @staticmethod
    def run_limit(pipe: RunContext) -> float | None:
        """Dollars this run may still commit: max_usd_per_run and what max_usd_per_day leaves, less
        what the run already committed (a calibration, another pass); None without a budget."""
        cfg = pipe.cfg
        limit = cfg.max_usd_per_run
        if cfg.max_usd_per_day is not None:
            left_today = max(cfg.max_usd_per_day - pipe.store.spent_today_usd(cfg.name), 0.0)
            limit = left_today if limit is None else min(limit, left_today)
        return None if limit is None else max(limit - pipe.run.estimated_usd, 0.0)

    def _calibrate(self, request: packing.RequestShape) -> estimate_mod.Calibration:
        cal = estimate_mod.local(self.prefix, tokens.tokenizer_ratio(self.pipe.cfg.spec.model))
        if self.pipe.cfg.count_tokens_api:
            try:
                sample = packing.fetch_planned(self.pipe.wh, request.req_no, request.req_no,
                                               self.pipe.cfg.spec, self.cached)[0]
                cal = estimate_mod.calibrate(self.pipe.client, self.pipe.cfg.spec, sample.rows(),
                                             cached=self.cached, local_prefix=self.prefix)
            except Exception as exc:  # API or network error: the local estimate stands
                warn(f"count_tokens_api: count_tokens failed ({exc}); using the local estimate")
            info(cal.describe())
            self.pipe.run.notes.append(cal.describe())
        return cal

    def estimates(self, shapes: packing.RequestShapes) -> np.ndarray:
        """Each request's estimated cost, in order; the first pays the cache write, the rest read it.
        Columns, not a loop: 20,000 requests are priced at once."""
        if self.calibration is None:
            self.calibration = self._calibrate(shapes[0])
        spec = self.pipe.cfg.spec
        rows_in = self.calibration.rows_tokens_many(shapes.chars, shapes.n_items)
        prefix = self.calibration.prefix_tokens
        sizes, which = np.unique(shapes.n_items, return_inverse=True)  # a handful of pack sizes
        out = np.array([prompts.max_tokens_for(spec, int(n)) for n in sizes], dtype=np.float64)[which]
        model = spec.model

        def priced(tier: str) -> Any:
            if self.cached:
                first = np.zeros(len(shapes), dtype=bool)
                first[0] = True
                one_hour = spec.cache_ttl == "1h"
                written = np.where(first, prefix, 0)
                return cost.billed_usd_many(
                    model, tier, input_tokens=rows_in, output_tokens=out,
                    cache_write_1h_tokens=written if one_hour else 0, cache_write_5m_tokens=0 if one_hour else written,
                    cache_read_tokens=np.where(first, 0, prefix))
            return cost.billed_usd_many(model, tier, input_tokens=rows_in + prefix, output_tokens=out)

        est = priced("batch" if self.batch else "standard")
        if est is None:  # a model with no prices (said in the log): no dollar estimate, nothing to cap
            return np.zeros(len(shapes))
        if self.preflight and self.batch and len(shapes):
            est = np.array(est, dtype=np.float64)
            est[0] = priced("standard")[0]
        return est

    def admit(self, shapes: packing.RequestShapes) -> int:
        """How many requests go (always the first ones, in order): until the queue cap or the budget
        would be passed. The rest wait for a later run."""
        n = len(shapes)
        if not n:
            return 0
        est = self.estimates(shapes)
        room = n if self.room is None else min(self.room, n)
        spent = np.cumsum(est[:room])  # in order, as a running total: the same sums as one by one
        k = room if self.limit is None else int(np.searchsorted(spent, self.limit, side="right"))
        if k < n:
            self.reason = (f"processing-queue cap {self.pipe.cfg.queue_cap}" if self.room is not None and k >= self.room
                           else f"budget ${self.limit:.4f}")
        self.spent = float(spent[k - 1]) if k else 0.0
        self.admitted, self.admitted_texts = k, int(shapes.n_items[:k].sum())
        self.refused, self.refused_texts = n - k, int(shapes.n_items[k:].sum())
        return k

    def report(self) -> None:
        run = self.pipe.run
        run.estimated_usd += self.spent
        verb = "would submit" if self.pipe.cfg.dry_run else "submitted"
        info(f"estimate: {verb} {self.admitted_texts} text(s) in {self.admitted} request(s), up to ${self.spent:.4f}")
        if self.reason:
            note = (
                f"{self.reason} reached: {self.admitted_texts} text(s) submitted (up to ${self.spent:.4f}), "
                f"{self.refused_texts} text(s) in {self.refused} request(s) wait for a later run"
            )
            warn(note)
            run.notes.append(note)
        if self.pipe.cfg.dry_run:
            run.notes.append(f"dry run: {self.admitted_texts} text(s), up to ${self.spent:.4f}")
