"""Requests → batch bodies: the JSON of a batch create, rendered by the warehouse, sent from a file.

At a million rows the per-row work of building request bodies must not be Python's. The warehouse
renders each pack's user message as a JSON string (``prompts.RequestEncoder.rows_json_sql``) and
knows its byte length, so every request's exact size is known before anything is sent. For each
batch, only those per-request strings are written to a scratch file; the shared bytes (model,
system prompt, schema) are spliced around them while the body streams to the API, so a 256 MB
body costs a small buffer, not 256 MB of memory, and can be re-read for a retry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from . import packing, prompts
from .batches import EncodedBody
from .warehouse import Warehouse

TABLE = "cb_tmp_bodies"  # req_no, rows_json (quoted JSON string of the user message), bytes


def render(wh: Warehouse, encoder: prompts.RequestEncoder, pending: str) -> list[int]:
    """Render every planned request's rows JSON; returns each request's exact encoded size, by req_no."""
    rows_json = encoder.rows_json_sql(wh, "k.item_id", "p.text")
    wh.execute(f"""
        CREATE OR REPLACE TEMP TABLE {TABLE} AS
        SELECT k.req_no, count(*) AS n_items, {rows_json} AS rows_json
        FROM {packing.ITEMS} k JOIN {pending} p USING (rn) GROUP BY k.req_no""")
    rows = wh.fetchall(f"SELECT n_items, {wh.byte_length_sql('rows_json')} FROM {TABLE} ORDER BY req_no")
    return [encoder.quoted_size(packing.CUSTOM_ID_LEN, int(n), int(b)) for n, b in rows]


class FileBody(EncodedBody):
    """One batch's create body: the requests' rows JSON in a scratch file, the rest from the encoder."""

    def __init__(self, encoder: prompts.RequestEncoder, path: Path, sub_key: str, n_items: list[int],
                 offsets: np.ndarray, size: int):
        self.encoder, self.path, self.sub_key = encoder, path, sub_key
        self.n_items, self.offsets = n_items, offsets
        super().__init__(self._pieces, size)

    def _pieces(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            data = memoryview(f.read()) if os.path.getsize(self.path) <= 1 << 26 else None
            for index, n in enumerate(self.n_items):
                start, end = int(self.offsets[index]), int(self.offsets[index + 1])
                if data is not None:
                    rows = data[start:end]
                else:
                    f.seek(start)
                    rows = f.read(end - start)
                cid = packing.custom_id(self.sub_key, index).encode()
                yield b"".join(self.encoder.encode_quoted(cid, n, rows))


def write(wh: Warehouse, encoder: prompts.RequestEncoder, first: int, last: int, sub_key: str,
          path: Path, size: int) -> FileBody:
    """Write requests ``first``..``last``'s rows JSON to ``path`` (bytes straight from Arrow buffers)."""
    n_items: list[int] = []
    lengths: list[np.ndarray] = []
    with open(path, "wb") as f:
        for batch in wh.iter_arrow(
            f"SELECT n_items, rows_json FROM {TABLE} WHERE req_no BETWEEN {int(first)} AND {int(last)} ORDER BY req_no"
        ):
            n_items.extend(batch.column(0).to_pylist())
            col = batch.column(1)
            kind = str(col.type)
            if kind in ("string", "utf8", "large_string", "large_utf8"):
                # The column's bytes are already the concatenated strings: write them in one go.
                _, offsets_buf, data_buf = col.buffers()[:3]
                width = np.int32 if kind in ("string", "utf8") else np.int64
                offs = np.frombuffer(offsets_buf, dtype=width)[col.offset: col.offset + len(col) + 1]
                f.write(memoryview(data_buf)[int(offs[0]): int(offs[-1])])
                lengths.append(np.diff(offs).astype(np.int64))
            else:  # e.g. string_view: one Python string per request (thousands, not millions)
                encoded = [v.encode() for v in col.to_pylist()]
                f.write(b"".join(encoded))
                lengths.append(np.array([len(v) for v in encoded], dtype=np.int64))
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(all_lengths)])
    return FileBody(encoder, path, sub_key, n_items, offsets, size)
