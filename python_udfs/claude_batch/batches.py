"""The Message Batches API as the pipeline uses it: create, retrieve, find, cancel, download.

No SQL and no prompt knowledge here: requests come in as ready Messages params. The SDK does the
HTTP (retries with back-off on 408/409/429/5xx and connection errors, honouring ``retry-after``).
Results are streamed as raw bytes to a file, which DuckDB then parses: the SDK's ``results()``
iterator builds one Python object per line and is an order of magnitude slower at scale.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import anthropic
from . import logs
from .errors import ClaudeBatchError


# The body is {"requests":[...]}: two bytes between requests, a few around them.
ENVELOPE_BYTES = 16


def request_bytes(request: dict) -> int:
    return len(json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode())


def split_ranges(
    sizes: Sequence[tuple[int, int]], *, max_count: int, max_bytes: int
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """Cut numbered requests ``(number, bytes)`` into batches at whichever of the count or byte limit
    binds first. Returns ``(first, last, body bytes)`` per batch, and the requests too big for any
    batch (each is skipped: the batches around it stay contiguous)."""
    ranges: list[tuple[int, int, int]] = []
    oversized: list[tuple[int, int]] = []
    start: int | None = None
    prev = used = 0
    for number, size in sizes:
        if size + ENVELOPE_BYTES > max_bytes:
            oversized.append((number, size))
            if start is not None:
                ranges.append((start, prev, used))
            start = None
            continue
        if start is not None and (number - start >= max_count or used + size + 1 > max_bytes or number != prev + 1):
            ranges.append((start, prev, used))
            start = None
        if start is None:
            start, used = number, len(EncodedBody.OPEN) + len(EncodedBody.CLOSE) - 1
        used += size + 1
        prev = number
    if start is not None:
        ranges.append((start, prev, used))
    return ranges, oversized


def _as_dict(obj: Any) -> dict:
    return obj.model_dump(mode="json") if hasattr(obj, "model_dump") else dict(obj)


class EncodedBody:
    """A create call's JSON body, produced piece by piece while it is sent, and again on a retry.

    With the exact size known up front it goes out with a Content-Length (not chunked), and never
    sits in memory whole: a 256 MB batch costs a 1 MB buffer.
    """

    OPEN, CLOSE = b'{"requests":[', b"]}"

    def __init__(self, pieces: Callable[[], Iterator[bytes]], size: int):
        self._pieces = pieces
        self.size = size

    def __iter__(self) -> Iterator[bytes]:
        buf = bytearray(self.OPEN)
        for n, piece in enumerate(self._pieces()):
            if n:
                buf += b","
            buf += piece
            if len(buf) >= 1 << 20:
                yield bytes(buf)
                buf.clear()
        buf += self.CLOSE
        yield bytes(buf)

    @classmethod
    def total_size(cls, piece_sizes: Sequence[int]) -> int:
        return len(cls.OPEN) + sum(piece_sizes) + max(len(piece_sizes) - 1, 0) + len(cls.CLOSE)


def create_raw(client: anthropic.Anthropic, body: EncodedBody | bytes) -> dict:
    """Create one batch from a body we encoded (see prompts.RequestEncoder).

    Same endpoint, auth, retries and error types as ``client.messages.batches.create``; the body is
    serialised by us once, with the shared prefix's bytes reused, instead of the SDK walking and
    re-serialising every request's params (the slowest step at 100,000 requests).
    """
    from anthropic.types.messages import MessageBatch

    headers = {"content-type": "application/json"}
    if isinstance(body, EncodedBody):
        headers["content-length"] = str(body.size)
    batch = client.post("/v1/messages/batches", cast_to=MessageBatch, content=body, options={"headers": headers})
    return _as_dict(batch)


def retrieve(client: anthropic.Anthropic, batch_id: str) -> dict:
    return _as_dict(client.messages.batches.retrieve(batch_id))


def cancel(client: anthropic.Anthropic, batch_id: str) -> dict:
    return _as_dict(client.messages.batches.cancel(batch_id))


def parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def list_since(client: anthropic.Anthropic, since: datetime) -> Iterator[dict]:
    """Batches created at or after ``since`` (the list is newest first; stop once past it)."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    for batch in client.messages.batches.list(limit=100):
        data = _as_dict(batch)
        created = parse_time(data["created_at"])
        if created is not None and created < since:
            return
        yield data


def find_candidates(
    client: anthropic.Anthropic,
    *,
    intent_at: datetime,
    request_count: int,
    exclude: set[str],
    skew: timedelta = timedelta(hours=1),
) -> list[dict]:
    """Batches that could be the one a crashed run created: created near the intent, same size,
    and not already known to us. The Batches API has no metadata field to match on.

    ``created_at`` is the API's clock and ``intent_at`` ours: the window reaches ``skew`` before the
    intent so that a clock running ahead of the API's (minutes, on a badly synced host) cannot hide
    our batch, which would then be sent again. Only a batch whose results carry our custom_ids is
    adopted, so a wide window costs listing time, not wrong matches."""
    return [
        b
        for b in list_since(client, intent_at - skew)
        if b["id"] not in exclude
        and sum((b.get("request_counts") or {}).values()) == request_count
    ]


def first_custom_id(client: anthropic.Anthropic, batch_id: str) -> str | None:
    """custom_id of the first result line: enough to tell whose batch an ended batch is."""
    with client.messages.batches.with_streaming_response.results(batch_id) as response:
        for line in response.iter_lines():
            if line.strip():
                return json.loads(line).get("custom_id")
    return None


class IncompleteResultsError(ClaudeBatchError, RuntimeError):
    pass


def download_results(
    client: anthropic.Anthropic,
    batch_id: str,
    dest: Path,
    *,
    expected_lines: int | None = None,
    attempts: int = 4,
    backoff_s: float = 0.5,
) -> Path:
    """Stream a batch's results to ``dest`` and check they are whole, retrying a cut stream.

    Results stay downloadable for 29 days, so downloading again is always safe.
    """
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            with client.messages.batches.with_streaming_response.results(batch_id) as response:
                with open(dest, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
            lines = _count_complete_lines(dest)
            if expected_lines is not None and lines != expected_lines:
                raise IncompleteResultsError(
                    f"batch {batch_id}: got {lines} result lines, expected {expected_lines}"
                )
            return dest
        except (anthropic.APIConnectionError, IncompleteResultsError, OSError) as exc:
            last_error = exc
        except Exception as exc:  # the HTTP layer's own "peer closed connection" errors
            if "closed" not in str(exc).lower() and "incomplete" not in str(exc).lower():
                raise
            last_error = exc
        logs.warn(f"results download of {batch_id} failed (attempt {attempt}/{attempts}): {last_error}")
        time.sleep(backoff_s * attempt)
    raise IncompleteResultsError(f"could not download whole results of {batch_id}: {last_error}")


def _count_complete_lines(path: Path) -> int:
    """Lines that end with a newline or parse as JSON (the last line may lack a newline)."""
    count = 0
    with open(path, "rb") as fh:
        last = b""
        for line in fh:
            if line.endswith(b"\n"):
                if line.strip():
                    count += 1
                last = b""
            else:
                last = line
        if last.strip():
            try:
                json.loads(last)
                count += 1
            except ValueError:
                raise IncompleteResultsError(f"{path}: last line is cut") from None
    return count
