"""Rows → requests: pack pending items into requests and give them legal, deterministic custom_ids.

A custom_id is ``<submission key>-<request number>``: 12 + 1 + 6 characters from ``[0-9a-f-]``,
legal whatever the user's keys look like (the API allows ``^[a-zA-Z0-9_-]{1,64}$``) and always the
same length, so a request's encoded size is known before its submission key is. The submission key is
a hash of the classifier version, a per-classifier intent counter and the items with their attempts,
so the same state gives the same ids, and a crashed submission's batch can be recognised from the
custom_ids in its results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from . import prompts
from .state import PendingItem

CUSTOM_ID_LEN = 19


@dataclass(slots=True)
class PlannedRequest:
    custom_id: str
    attempt: int
    items: list[tuple[int, PendingItem, int]]  # (local id, item, characters)
    spec: prompts.PromptSpec | None = None
    cache: bool = False
    _params: dict | None = field(default=None, repr=False)

    @property
    def chars(self) -> int:
        return sum(n for _, _, n in self.items)

    @property
    def params(self) -> dict:
        """Messages params (built on demand: the batch path encodes bytes directly)."""
        if self._params is None:
            assert self.spec is not None
            self._params = prompts.build_params(self.spec, self.rows(), cache=self.cache)
        return self._params

    def release_texts(self) -> None:
        """Drop the row texts once the request is encoded (the batch path keeps only the bytes)."""
        for _, item, _ in self.items:
            item.text = ""

    def rows(self) -> list[tuple[int, str]]:
        return [(local, item.text) for local, item, _ in self.items]


def submission_key(version: str, items: Iterable[PendingItem], seq: int) -> str:
    h = hashlib.sha256(f"{version}|{seq}".encode())
    for item in items:
        h.update(f"|{item.text_hash}:{item.attempt}".encode())
    return h.hexdigest()[:12]


def custom_id(sub_key: str, index: int) -> str:
    return f"{sub_key}-{index:06d}"


def iter_packs(
    items: Iterable[PendingItem], *, pack_size: int, max_pack_chars: int
) -> Iterator[list[tuple[PendingItem, int]]]:
    """Group items into packs of at most ``pack_size`` rows and ``max_pack_chars`` characters.

    Items whose last answer lost or garbled them go alone, so one confusing row cannot keep
    spoiling its neighbours. Order is kept (callers sort by text hash), so packs are deterministic.
    """
    current: list[tuple[PendingItem, int]] = []
    used = 0
    for item in items:
        n = len(item.text)
        if item.alone or pack_size == 1:
            yield [(item, n)]
            continue
        if current and (len(current) >= pack_size or used + n > max_pack_chars):
            yield current
            current, used = [], 0
        current.append((item, n))
        used += n
    if current:
        yield current


def planned(pack: Sequence[tuple[PendingItem, int]], spec: prompts.PromptSpec, cache: bool) -> PlannedRequest:
    """A request for one pack; its custom_id is set when its submission is (see ``assign_ids``)."""
    local = [(i, item, n) for i, (item, n) in enumerate(pack, start=1)]
    return PlannedRequest(
        custom_id="", attempt=max(item.attempt for _, item, _ in local), items=local, spec=spec, cache=cache
    )


def assign_ids(version: str, requests: Sequence[PlannedRequest], seq: int) -> str:
    """Give a submission's requests their custom_ids; returns the submission key."""
    key = submission_key(version, (item for p in requests for _, item, _ in p.items), seq)
    for index, request in enumerate(requests):
        request.custom_id = custom_id(key, index)
    return key
