"""Rows → requests: pack pending items into requests and give them legal, recognisable custom_ids.

Packing is set-based: the warehouse numbers the pending items (``gather``), and a pack is a run of
``pack_size`` consecutive items, so a million items are packed by arithmetic, not by a Python loop.
The rare run over ``max_pack_chars`` is split greedily in Python (only its lengths are fetched).
Items whose last answer lost or garbled them go alone, so one confusing row cannot keep spoiling
its neighbours.

A custom_id is ``<submission key>-<request number>``: 12 + 1 + 6 characters from ``[0-9a-f-]``,
legal whatever the user's keys look like (the API allows ``^[a-zA-Z0-9_-]{1,64}$``) and always the
same length, so a request's encoded size is known before its submission key is. The submission key is
a hash of the classifier version, a per-classifier intent counter and the items with their attempts
(recorded with the intent, before the create call), so a crashed submission's batch can be
recognised from the custom_ids in its results. Which texts share a pack is not fixed (the gather
does not sort), and need not be: every item is recorded with its request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from . import prompts
from .warehouse import Warehouse

CUSTOM_ID_LEN = 19
REQ_DIGITS = 6

# Temp tables written here (connection-local, replaced every run).
ITEMS = "cb_tmp_packed"  # the plan (a view): one row per pending item, its pending columns, req_no and item_id
RANKED = "cb_tmp_ranked"  # the plan's rows when packing had to rank them (alone items, split runs)
REQUESTS = "cb_tmp_reqs"  # one row per request: req_no, n_items, chars, attempt


@dataclass(slots=True)
class PendingText:
    """A text to send (the unit of work: one distinct text under the classifier version)."""

    text_hash: str
    text: str
    rows: int
    attempt: int  # the attempt this submission will be (1 = first)
    alone: bool  # previous answer lost or garbled this item: send it in a request of its own


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What the budget guard and the batch splitter need of a request, without its texts."""

    req_no: int
    n_items: int
    chars: int
    attempt: int


@dataclass(slots=True)
class PlannedRequest:
    """A request with its texts (the real-time path and token-count calibration use these)."""

    custom_id: str
    attempt: int
    items: list[tuple[int, PendingText, int]]  # (local id, item, characters)
    spec: prompts.PromptSpec | None = None
    cache: bool = False
    req_no: int = 0  # its number in this run's plan (cb_tmp_reqs)
    _params: dict | None = field(default=None, repr=False)

    @property
    def chars(self) -> int:
        return sum(n for _, _, n in self.items)

    @property
    def params(self) -> dict:
        """Messages params (built on demand)."""
        if self._params is None:
            assert self.spec is not None
            self._params = prompts.build_params(self.spec, self.rows(), cache=self.cache)
        return self._params

    def rows(self) -> list[tuple[int, str]]:
        return [(local, item.text) for local, item, _ in self.items]


def drop_plan(wh: Warehouse) -> None:
    """Free the plan (its pending items hold every text of the run)."""
    for name in (ITEMS, RANKED, REQUESTS):
        wh.drop_temp(name)


def greedy_split(chars: Sequence[int], max_chars: int) -> list[int]:
    """Sub-pack number of each item of a run: a new sub-pack whenever the next item would pass
    ``max_chars`` (an item longer than that alone goes alone)."""
    subs: list[int] = []
    sub = used = 0
    for n in chars:
        if used and used + n > max_chars:
            sub, used = sub + 1, 0
        subs.append(sub)
        used += n
    return subs


def pack(wh: Warehouse, pending: str, *, pack_size: int, max_pack_chars: int) -> int:
    """Assign every item of ``pending`` (rn, text_hash, text, n_rows, attempt, alone, chars; rn dense
    from 1) to a request.

    Makes ``cb_tmp_packed``, the plan: every pending column plus ``req_no`` and ``item_id``, so the
    steps after it (request shapes, bodies, the intent, the submission key) read one relation and
    join nothing; and ``cb_tmp_reqs``, one row per request. Requests are numbered from 1 with no
    gaps. The plan is a view: over ``pending`` itself when packing is arithmetic (no copy of a
    million texts), over a ranked table otherwise. Returns the number of requests.
    """
    size = max(int(pack_size), 1)
    # The run an item starts in: alone items (and pack_size 1) get a run of their own.
    run = f"CASE WHEN alone OR {size} = 1 THEN -rn ELSE {wh.int_div_sql('rn - 1', str(size))} END"
    runs = f"(SELECT rn, chars, {run} AS run FROM {pending})"
    over = wh.fetchall(f"""
        SELECT rn, chars, run FROM {runs} r
        WHERE run IN (SELECT run FROM {runs} x WHERE run >= 0 GROUP BY run
                      HAVING sum(chars) > {int(max_pack_chars)} AND count(*) > 1)
        ORDER BY rn""")
    subs: dict[int, int] = {}
    by_run: dict[int, list[tuple[int, int]]] = {}
    for rn, chars, run_no in over:
        by_run.setdefault(run_no, []).append((rn, chars))
    for members in by_run.values():
        for (rn, _), sub in zip(members, greedy_split([c for _, c in members], max_pack_chars)):
            subs[rn] = sub
    alone = size > 1 and bool(wh.scalar(f"SELECT count(*) FROM {pending} WHERE alone"))
    if subs or alone:
        # Runs split by characters, or holes left by items that go alone: number by rank.
        import pyarrow as pa

        with wh.arrow_relation(pa.table({"rn": pa.array(list(subs), pa.int64()),
                                         "sub": pa.array(list(subs.values()), pa.int64())})) as name:
            wh.create_temp_table(RANKED, f"""
                SELECT p.*, dense_rank() OVER (ORDER BY x.run < 0, abs(x.run), x.sub) AS req_no,
                       row_number() OVER (PARTITION BY x.run, x.sub ORDER BY p.rn) AS item_id
                FROM {pending} p
                JOIN (SELECT r.rn, r.run, coalesce(s.sub, 0) AS sub
                      FROM {runs} r LEFT JOIN {name} s USING (rn)) x USING (rn)""")
        wh.create_temp_view(ITEMS, f"SELECT * FROM {RANKED}")
    else:
        # The common case: arithmetic, no sort; requests follow rn, so the plan is in request order.
        wh.create_temp_view(ITEMS, f"""
            SELECT p.*, {wh.int_div_sql('rn - 1', str(size))} + 1 AS req_no, (rn - 1) % {size} + 1 AS item_id
            FROM {pending} p""")
    wh.create_temp_table(REQUESTS, f"""
        SELECT req_no, count(*) AS n_items, sum(chars) AS chars, max(attempt) AS attempt
        FROM {ITEMS} GROUP BY req_no""")
    return int(wh.scalar(f"SELECT count(*) FROM {REQUESTS}") or 0)


@dataclass(frozen=True)
class RequestShapes:
    """Every planned request's shape, as columns in req_no order (req_no runs 1..n with no gaps)."""

    req_no: np.ndarray
    n_items: np.ndarray
    chars: np.ndarray
    attempt: np.ndarray

    def __len__(self) -> int:
        return len(self.req_no)

    def __getitem__(self, index: int) -> RequestShape:
        return RequestShape(int(self.req_no[index]), int(self.n_items[index]), int(self.chars[index]),
                            int(self.attempt[index]))

    def __iter__(self) -> Iterator[RequestShape]:
        return (self[i] for i in range(len(self)))


def shapes(wh: Warehouse) -> RequestShapes:
    """Every planned request, in order: four numbers each, fetched as arrays (no object per request)."""
    cols = wh.fetch_arrays(f"SELECT req_no, n_items, chars, attempt FROM {REQUESTS} ORDER BY req_no")
    return RequestShapes(*(cols[c].astype(np.int64) for c in ("req_no", "n_items", "chars", "attempt")))


def fetch_planned(wh: Warehouse, first: int, last: int, spec: prompts.PromptSpec,
                  cache: bool) -> list[PlannedRequest]:
    """Requests ``first``..``last`` with their texts (real-time path, calibration)."""
    rows = wh.fetchall(
        f"""SELECT req_no, item_id, text_hash, text, n_rows, attempt, alone, chars
            FROM {ITEMS} WHERE req_no BETWEEN ? AND ? ORDER BY req_no, item_id""",
        [first, last],
    )
    out: list[PlannedRequest] = []
    current = None
    for req_no, item_id, h, text, n_rows, attempt, alone, chars in rows:
        if current is None or current[0] != req_no:
            current = (req_no, PlannedRequest(custom_id="", attempt=0, items=[], spec=spec, cache=cache,
                                               req_no=int(req_no)))
            out.append(current[1])
        p = current[1]
        p.items.append((int(item_id), PendingText(str(h), text, int(n_rows), int(attempt), bool(alone)), int(chars)))
        p.attempt = max(p.attempt, int(attempt))
    return out


def submission_key_sql(wh: Warehouse, version: str, seq: int, first: int, last: int) -> str:
    """Key of the submission of requests ``first``..``last``, from a digest the warehouse computes
    over its items (text hash and attempt), so no item crosses into Python."""
    n, digest = wh.fetchall(
        f"""SELECT count(*), {wh.set_digest_sql("text_hash", "attempt")}
            FROM {ITEMS} WHERE req_no BETWEEN ? AND ?""",
        [first, last],
    )[0]
    return hashlib.sha256(f"{version}|{seq}|{n}|{digest}".encode()).hexdigest()[:12]


def custom_id(sub_key: str, index: int) -> str:
    return f"{sub_key}-{index:0{REQ_DIGITS}d}"


def custom_id_sql(wh: Warehouse, sub_key: str, index_expr: str) -> str:
    """SQL for ``custom_id(sub_key, index)`` (sub_key is our own hex, safe to inline)."""
    return f"'{sub_key}-' || lpad({wh.text_sql(index_expr)}, {REQ_DIGITS}, '0')"
