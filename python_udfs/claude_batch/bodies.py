"""Requests → batch bodies: the JSON of a batch create, rendered by the warehouse, streamed to the API.

At a million rows the per-row work of building request bodies must not be Python's. The warehouse
renders each planned row's piece of its pack's user message, already JSON-escaped
(``prompts.RequestEncoder.row_piece_sql``); the pieces stream out in request order and are kept as
the Arrow buffers they arrive in (past ``MEMORY_BUDGET``, in a scratch file), and their byte lengths
summed per request give every request's exact size before anything is sent. A pack's user message
is then one contiguous byte range: no aggregation builds it, in the warehouse or in Python. The
shared bytes (model, system prompt, schema) are spliced around each range while the body streams to
the API, so a 256 MB body costs a small buffer on top of the rows, and can be re-read for a retry.
"""

from __future__ import annotations

import bisect
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa

from . import packing, prompts
from .batches import EncodedBody
from .warehouse import Warehouse

# Rendered rows up to this many bytes stay in memory (the Arrow buffers they arrived in); past it they
# go to the scratch file, so a backlog of any size costs this much memory at most.
MEMORY_BUDGET = 128 << 20
_READ_CHUNK = 1 << 20


class Spool:
    """Bytes appended in order, kept in memory up to ``budget`` and in a scratch file past it, and
    read back by range (a range may span both)."""

    def __init__(self, path: Path, budget: int = MEMORY_BUDGET):
        self.path, self.budget = path, budget
        self._chunks: list[memoryview] = []
        self._starts: list[int] = []
        self.in_memory = 0  # bytes [0, in_memory) are in memory, the rest in the file from its start
        self.size = 0
        self._file = None

    def append(self, data: memoryview) -> None:
        self.size += len(data)
        if self._file is None:
            room = max(self.budget - self.in_memory, 0)
            if room:  # what fits stays in memory, the rest of this chunk starts the file
                self._starts.append(self.in_memory)
                self._chunks.append(data[:room])
                self.in_memory += min(room, len(data))
                data = data[room:]
            if not len(data):
                return
            self._file = open(self.path, "wb")
        self._file.write(data)

    def reset(self) -> None:
        self.close()
        self._chunks, self._starts, self.in_memory, self.size = [], [], 0, 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, start: int, end: int, file: BinaryIO | None) -> list[memoryview | bytes]:
        """Bytes ``[start, end)`` as parts; ``file`` is the scratch file opened for reading (or None
        when nothing was spilled)."""
        parts: list[memoryview | bytes] = []
        pos = start
        while pos < end and pos < self.in_memory:
            i = bisect.bisect_right(self._starts, pos) - 1
            chunk, off = self._chunks[i], pos - self._starts[i]
            take = min(len(chunk) - off, end - pos)
            parts.append(chunk[off: off + take])
            pos += take
        if pos < end:
            assert file is not None
            file.seek(pos - self.in_memory)
            parts.append(file.read(end - pos))
        return parts


@dataclass
class RenderedRows:
    """Every planned request's user message: request ``req_no``'s pieces lie at
    ``[offsets[req_no - 1], offsets[req_no])`` of ``spool``."""

    spool: Spool
    offsets: np.ndarray
    n_items: list[int]
    sizes: list[int]  # each request's exact encoded size (custom_id of packing.CUSTOM_ID_LEN), by req_no - 1


def _string_buffers(col: pa.Array) -> tuple[np.ndarray, memoryview]:
    """(offsets, data) of a string column, whatever Arrow string type the warehouse returned."""
    kind = str(col.type)
    if kind not in ("string", "utf8", "large_string", "large_utf8"):
        col = col.cast(pa.large_string())  # e.g. string_view; a cast in C++, not a Python string per row
        kind = "large_string"
    _, offsets_buf, data_buf = col.buffers()[:3]
    width = np.int32 if kind in ("string", "utf8") else np.int64
    offsets = np.frombuffer(offsets_buf, dtype=width)[col.offset: col.offset + len(col) + 1]
    return offsets.astype(np.int64), memoryview(data_buf)


def _spool_pieces(wh: Warehouse, sql: str, spool: Spool, n_requests: int) -> np.ndarray | None:
    """Stream (req_no, piece) rows into ``spool``; the bytes per request, or None when the rows did
    not come in request order (the caller asks again with an ORDER BY)."""
    per_request = np.zeros(n_requests + 1, dtype=np.int64)
    last = 0
    spool.reset()
    try:
        for batch in wh.iter_arrow(sql, batch_rows=1 << 16):
            req = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
            if not len(req):
                continue
            if req[0] < last or (len(req) > 1 and bool(np.any(req[1:] < req[:-1]))):
                return None
            last = int(req[-1])
            offsets, data = _string_buffers(batch.column(1))
            spool.append(data[int(offsets[0]): int(offsets[-1])])
            # float64 weights are exact far past any file size (2**53 bytes)
            per_request += np.bincount(req, weights=np.diff(offsets), minlength=n_requests + 1).astype(np.int64)
    finally:
        spool.close()
    return per_request[1:]


def render(wh: Warehouse, encoder: prompts.RequestEncoder, path: Path,
           memory_budget: int = MEMORY_BUDGET) -> RenderedRows:
    """Render every planned request's user message (in memory, past ``memory_budget`` in ``path``);
    and each request's exact encoded size, by req_no."""
    n_items = [int(n) for (n,) in wh.fetchall(f"SELECT n_items FROM {packing.REQUESTS} ORDER BY req_no")]
    piece = encoder.row_piece_sql(wh, "item_id", "text")
    sql = f"SELECT req_no, {piece} AS piece FROM {packing.ITEMS}"
    spool = Spool(path, memory_budget)
    # The plan is stored in request order when packing was arithmetic (the usual case), so a plain
    # scan streams every request's pieces together; otherwise (or if the warehouse reorders), sort.
    rows_bytes = _spool_pieces(wh, sql, spool, len(n_items))
    if rows_bytes is None:
        rows_bytes = _spool_pieces(wh, sql + " ORDER BY req_no", spool, len(n_items))
    assert rows_bytes is not None
    offsets = np.concatenate([[0], np.cumsum(rows_bytes)]).astype(np.int64)
    quoted = len(prompts.ROWS_OPEN_JSON) + len(prompts.ROWS_CLOSE_JSON)
    sizes = [encoder.quoted_size(packing.CUSTOM_ID_LEN, n, int(b) + quoted) for n, b in zip(n_items, rows_bytes)]
    return RenderedRows(spool, offsets, n_items, sizes)


class BatchBody(EncodedBody):
    """One batch's create body: requests ``first``..``last`` of the rendered rows, with the rest of
    each request spliced in by the encoder."""

    def __init__(self, encoder: prompts.RequestEncoder, rows: RenderedRows, first: int, last: int, sub_key: str):
        self.encoder, self.rows, self.first, self.last, self.sub_key = encoder, rows, first, last, sub_key
        super().__init__(self._pieces, EncodedBody.total_size(rows.sizes[first - 1: last]))

    def _pieces(self) -> Iterator[bytes]:
        rows, offsets, spool = self.rows, self.rows.offsets, self.rows.spool
        spilled = spool.size > spool.in_memory
        with (open(spool.path, "rb", buffering=_READ_CHUNK) if spilled else contextlib.nullcontext()) as f:
            for index, req_no in enumerate(range(self.first, self.last + 1)):
                message = spool.read(int(offsets[req_no - 1]), int(offsets[req_no]), f)
                cid = packing.custom_id(self.sub_key, index).encode()
                yield b"".join(self.encoder.encode_rendered(cid, rows.n_items[req_no - 1], message))
