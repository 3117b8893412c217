"""Requests → batch bodies: the JSON of a batch create, rendered by the warehouse, sent from a file.

At a million rows the per-row work of building request bodies must not be Python's. The warehouse
renders each planned row's piece of its pack's user message, already JSON-escaped
(``prompts.RequestEncoder.row_piece_sql``); the pieces stream out in request order, straight from
Arrow buffers into one scratch file, and their byte lengths summed per request give every
request's exact size before anything is sent. A pack's user message is then one contiguous range of
that file: no aggregation builds it, in the warehouse or in Python. The shared bytes (model, system
prompt, schema) are spliced around each range while the body streams to the API, so a 256 MB body
costs a small buffer, not 256 MB of memory, and can be re-read for a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from . import packing, prompts
from .batches import EncodedBody
from .warehouse import Warehouse

_READ_CHUNK = 1 << 20


@dataclass
class RenderedRows:
    """Every planned request's user message, as bytes in ``path``: request ``req_no``'s pieces lie
    at ``[offsets[req_no - 1], offsets[req_no])``."""

    path: Path
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


def _write_pieces(wh: Warehouse, sql: str, path: Path, n_requests: int) -> np.ndarray | None:
    """Stream (req_no, piece) rows into ``path``; the bytes per request, or None when the rows did
    not come in request order (the caller asks again with an ORDER BY)."""
    per_request = np.zeros(n_requests + 1, dtype=np.int64)
    last = 0
    with open(path, "wb") as f:
        for batch in wh.iter_arrow(sql, batch_rows=1 << 16):
            req = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
            if not len(req):
                continue
            if req[0] < last or (len(req) > 1 and bool(np.any(req[1:] < req[:-1]))):
                return None
            last = int(req[-1])
            offsets, data = _string_buffers(batch.column(1))
            f.write(data[int(offsets[0]): int(offsets[-1])])
            # float64 weights are exact far past any file size (2**53 bytes)
            per_request += np.bincount(req, weights=np.diff(offsets), minlength=n_requests + 1).astype(np.int64)
    return per_request[1:]


def render(wh: Warehouse, encoder: prompts.RequestEncoder, path: Path) -> RenderedRows:
    """Render every planned request's user message into ``path``; its exact encoded size, by req_no."""
    n_items = [int(n) for (n,) in wh.fetchall(f"SELECT n_items FROM {packing.REQUESTS} ORDER BY req_no")]
    piece = encoder.row_piece_sql(wh, "item_id", "text")
    sql = f"SELECT req_no, {piece} AS piece FROM {packing.ITEMS}"
    # The plan is stored in request order when packing was arithmetic (the usual case), so a plain
    # scan streams every request's pieces together; otherwise (or if the warehouse reorders), sort.
    rows_bytes = _write_pieces(wh, sql, path, len(n_items))
    if rows_bytes is None:
        rows_bytes = _write_pieces(wh, sql + " ORDER BY req_no", path, len(n_items))
    assert rows_bytes is not None
    offsets = np.concatenate([[0], np.cumsum(rows_bytes)]).astype(np.int64)
    quoted = len(prompts.ROWS_OPEN_JSON) + len(prompts.ROWS_CLOSE_JSON)
    sizes = [encoder.quoted_size(packing.CUSTOM_ID_LEN, n, int(b) + quoted) for n, b in zip(n_items, rows_bytes)]
    return RenderedRows(path, offsets, n_items, sizes)


class FileBody(EncodedBody):
    """One batch's create body: requests ``first``..``last`` of the rendered rows, with the rest of
    each request spliced in by the encoder."""

    def __init__(self, encoder: prompts.RequestEncoder, rows: RenderedRows, first: int, last: int, sub_key: str):
        self.encoder, self.rows, self.first, self.last, self.sub_key = encoder, rows, first, last, sub_key
        super().__init__(self._pieces, EncodedBody.total_size(rows.sizes[first - 1: last]))

    def _pieces(self) -> Iterator[bytes]:
        rows, offsets = self.rows, self.rows.offsets
        with open(rows.path, "rb", buffering=_READ_CHUNK) as f:
            f.seek(int(offsets[self.first - 1]))
            for index, req_no in enumerate(range(self.first, self.last + 1)):
                message = f.read(int(offsets[req_no] - offsets[req_no - 1]))
                cid = packing.custom_id(self.sub_key, index).encode()
                yield b"".join(self.encoder.encode_rendered(cid, rows.n_items[req_no - 1], message))
