"""Rows → requests: pack pending items into requests and give them legal, deterministic custom_ids.

A custom_id is ``<submission key>-<request number>``: 12 + 1 + 6 characters from ``[0-9a-f-]``,
legal whatever the user's keys look like (the API allows ``^[a-zA-Z0-9_-]{1,64}$``). The submission
key is a hash of the classifier version, the items and their attempts, and a per-classifier intent
counter, so the same state gives the same ids, and a crashed submission's batch can be recognised
from the custom_ids in its results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

from . import prompts, tokens
from .state import PendingItem


@dataclass
class PlannedRequest:
    custom_id: str
    attempt: int
    items: list[tuple[int, PendingItem, int]]  # (local id, item, row tokens)
    params: dict = field(default_factory=dict)

    @property
    def row_tokens(self) -> int:
        return sum(t for _, _, t in self.items)


def submission_key(version: str, items: Sequence[PendingItem], seq: int) -> str:
    h = hashlib.sha256(f"{version}|{seq}".encode())
    for item in items:
        h.update(f"|{item.text_hash}:{item.attempt}".encode())
    return h.hexdigest()[:12]


def custom_id(sub_key: str, index: int) -> str:
    return f"{sub_key}-{index:06d}"


def pack_items(
    items: Sequence[PendingItem], *, pack_size: int, max_pack_tokens: int
) -> list[list[tuple[PendingItem, int]]]:
    """Group items into packs of at most ``pack_size`` rows and ``max_pack_tokens`` row tokens.

    Items whose last answer lost or garbled them go alone, so one confusing row cannot keep
    spoiling its neighbours. Order is kept (callers sort by text hash), so packs are deterministic.
    """
    packs: list[list[tuple[PendingItem, int]]] = []
    current: list[tuple[PendingItem, int]] = []
    used = 0
    for item in items:
        n = tokens.count_text(item.text)
        if item.alone or pack_size == 1:
            packs.append([(item, n)])
            continue
        if current and (len(current) >= pack_size or used + n > max_pack_tokens):
            packs.append(current)
            current, used = [], 0
        current.append((item, n))
        used += n
    if current:
        packs.append(current)
    return packs


def plan_requests(
    spec: prompts.PromptSpec,
    version: str,
    items: Sequence[PendingItem],
    *,
    seq: int,
    pack_size: int,
    max_pack_tokens: int,
    cache: bool,
) -> tuple[str, list[PlannedRequest]]:
    """The submission key and its requests, params built and ready to send."""
    sub_key = submission_key(version, items, seq)
    planned = []
    for index, pack in enumerate(pack_items(items, pack_size=pack_size, max_pack_tokens=max_pack_tokens)):
        local = [(i, item, n) for i, (item, n) in enumerate(pack, start=1)]
        params = prompts.build_params(spec, [(i, item.text) for i, item, _ in local], cache=cache)
        planned.append(
            PlannedRequest(
                custom_id=custom_id(sub_key, index),
                attempt=max(item.attempt for _, item, _ in local),
                items=local,
                params=params,
            )
        )
    return sub_key, planned
