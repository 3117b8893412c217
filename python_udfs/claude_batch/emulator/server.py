"""HTTP routing on the stdlib ThreadingHTTPServer (no web framework, nothing to install).

``EmulatorServer`` owns every component (clock, faults, rate limiter, prompt cache, responder,
store, worker, received log) and serves:

- the API: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``, ``POST|GET
  /v1/messages/batches``, ``GET|DELETE /v1/messages/batches/{id}``, ``POST .../{id}/cancel``,
  ``GET .../{id}/results``, ``GET /v1/models``, ``GET /v1/models/{id}`` (models_api.py). Every API
  call needs an API key and an ``anthropic-version`` header (versions.py: the version picks the
  rules Messages params are judged by; a batch keeps the one it was created with);
- control endpoints under ``/_emulator/`` (not part of the real API, no API key needed): ``clock``,
  ``faults``, ``script``, ``received``, ``stats``, ``worker``, ``health``.

Every error, including malformed bodies, wrong content types, oversized uploads and unexpected
exceptions, is answered with the API's error JSON; tracebacks only go to the log. API keys are
never logged or stored: batches and caches are tied to a salted hash of the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import secrets
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from datetime import date
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import models_api, versions
from .caching import PromptCache
from .clock import Clock, rfc3339
from .config import Settings
from .engine import Engine
from .errors import STATUS_TYPES, ApiError, error_body, new_request_id, random_id
from .faults import Faults
from .ratelimit import RateLimiter
from .received import ReceivedLog, record
from .responder import Responder
from .store import EXPIRY_SECONDS, BatchStore
from .usage import request_tokens
from .validation import (
    BodyError,
    check_breakpoints,
    check_count_tokens_params,
    check_envelope,
    iter_batch_requests,
)
from .worker import Worker

log = logging.getLogger("claude_batch.emulator")

CHUNK = 1 << 20
_DRAIN_CAP = 1 << 30  # beyond this an oversized upload is cut off rather than read
_BATCHES = "/v1/messages/batches"


class _BodyStream:
    """A request body read on demand, from Content-Length or chunked transfer encoding."""

    def __init__(self, rfile, *, length: int | None, chunked: bool, limit: int) -> None:
        self._rfile = rfile
        self._left = length or 0  # bytes left (plain body) or left in the current chunk
        self._chunked = chunked
        self._limit = limit
        self._total = 0
        self.done = not chunked and not length

    def _next_chunk(self) -> None:
        line = self._rfile.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise ApiError(400, "malformed chunked body") from None
        if size == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self.done = True
        self._left = size

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the body."""
        if self.done:
            return b""
        if self._chunked and self._left == 0:
            self._next_chunk()
            if self.done:
                return b""
        data = self._rfile.read(min(size, self._left))
        if not data:
            raise ApiError(400, "request body shorter than announced")
        self._left -= len(data)
        self._total += len(data)
        if self._total > self._limit:
            raise ApiError(
                413, f"Request exceeds the maximum allowed number of bytes ({self._limit}).",
                error_type="request_too_large",
            )
        if self._left == 0:
            if self._chunked:
                self._rfile.readline(1024)  # CRLF after the chunk
            else:
                self.done = True
        return data

    def read_all(self) -> bytes:
        parts = []
        while True:
            data = self.read(CHUNK)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def drain(self) -> bool:
        """Read and drop the rest (so the client sees our answer); False if it was too much."""
        self._limit = float("inf")
        if not self._chunked and self._left > _DRAIN_CAP:
            return False
        dropped = 0
        try:
            while not self.done:
                dropped += len(self.read(CHUNK))
                if dropped > _DRAIN_CAP:
                    return False
        except (ApiError, OSError):
            return False
        return True


class EmulatorServer:
    """All state of one emulator instance; ``serve_forever`` runs the HTTP server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        state = Path(settings.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.clock = Clock(state / "clock.json")
        self.faults = Faults(settings.faults)
        self.limiter = RateLimiter(self.clock, self.faults)
        self.cache = PromptCache(self.clock)
        self.responder = Responder()
        self.engine = Engine(self.cache, self.responder)
        self.store = BatchStore(state / "batches", self.clock, cancel_seconds=settings.cancel_seconds)
        self.received = ReceivedLog(state / "received.jsonl")
        self.worker = Worker(
            self.store, self.cache, self.responder, processes=settings.worker_processes
        )
        self._salt = self._load_salt(state / "key_salt")
        self._stats_lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.httpd = _HTTPServer((settings.host, settings.port), _Handler, self)
        self.port = self.httpd.server_address[1]
        if settings.worker_paused:
            self.worker.pause()
        for batch_id in self.store.unfinished_ids():
            self.worker.enqueue(batch_id)  # resume work interrupted by a stop or a crash

    @staticmethod
    def _load_salt(path: Path) -> bytes:
        if not path.exists():
            path.write_bytes(secrets.token_bytes(16))
        return path.read_bytes()

    def key_id(self, api_key: str) -> str:
        """Stands for an API key in the state dir and the cache (salted hash, never the key)."""
        return hashlib.sha256(self._salt + api_key.encode()).hexdigest()[:32]

    def today(self) -> date:
        """Today (UTC) on the virtual clock: retirement dates and lifecycles are judged by it."""
        return versions.day_of(self.clock.now())

    def count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            self.counters[name] = self.counters.get(name, 0) + amount

    def serve_forever(self) -> None:
        self.worker.start()
        self.httpd.serve_forever(poll_interval=0.05)

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.close_all_connections()
        self.httpd.server_close()
        self.worker.stop()

    def processing_seconds(self) -> float:
        value = self.faults.get("processing_seconds")
        return float(self.settings.processing_seconds if value is None else value)

    def answer_errors(self):
        """The live error model (errormodel.py) for /v1/messages calls, None when it is off; built
        again only when the configuration changed."""
        config = self.faults.get("answer_errors")
        cached = getattr(self, "_answer_errors", (None, None))
        if cached[0] != config:
            from .errormodel import ErrorModel

            cached = self._answer_errors = (config, ErrorModel.from_config(config))
        return cached[1]

    def stats(self) -> dict:
        with self._stats_lock:
            counters = dict(self.counters)
        return {
            "calls": counters,
            "batches": self.store.status_counts(),
            "batch_requests_processed": self.worker.processed_requests,
            "batches_computed_in_helper_processes": self.worker.batches_in_helpers,
            "cache": dict(self.cache.stats),
            "worker_paused": self.worker.paused,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "clock": rfc3339(self.clock.now()),
        }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_all_connections(self) -> None:
        # Idle keep-alive connections would otherwise keep their threads alive after shutdown.
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "claude-batch-emulator"
    sys_version = ""
    server: _HTTPServer

    # ------------------------------------------------------------------ plumbing

    def setup(self) -> None:
        self.timeout = self.server.emulator.settings.read_timeout
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Request lines only (method, path, status): never headers, so never the API key.
        log.info("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unsupported method...) as the API's error JSON."""
        self._request_id = getattr(self, "_request_id", None) or new_request_id()
        self.close_connection = True
        error_type = "not_found_error" if code == 404 else STATUS_TYPES.get(code, "invalid_request_error")
        if code >= 500 and code not in STATUS_TYPES:
            error_type = "invalid_request_error" if code == 501 else "api_error"
        try:
            self._send_bytes(
                code, error_body(error_type, message or explain or "bad request", self._request_id),
                "application/json",
            )
        except OSError:
            pass

    @property
    def emu(self) -> EmulatorServer:
        return self.server.emulator

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        if not host:
            address, port = self.server.server_address[:2]
            host = f"{address}:{port}"
        return f"http://{host}"

    def _send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", self._request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_bytes(status, body, "application/json", headers)

    def _send_error(self, exc: ApiError) -> None:
        body = error_body(exc.error_type, exc.message, self._request_id)
        headers = dict(exc.headers)
        if exc.status == 429 and "retry-after" not in headers:
            headers["retry-after"] = "1"
        self._send_bytes(exc.status, body, "application/json", headers)

    def _send_file(
        self, path: Path, content_type: str, *, cut: bool = False, size: int | None = None
    ) -> None:
        """Send the file (its first ``size`` bytes if given); ``cut``: only half, then drop the line."""
        if size is None:
            size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        self.send_header("request-id", self._request_id)
        self.end_headers()
        limit = size // 2 if cut else size
        sent = 0
        with open(path, "rb") as src:
            while sent < limit:
                chunk = src.read(min(CHUNK, limit - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
        if cut:
            self._drop()

    def _drop(self) -> None:
        """Close the socket without (finishing) an answer."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _open_body(self, limit: int) -> _BodyStream:
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        raw_length = self.headers.get("Content-Length")
        length = None
        if not chunked and raw_length is not None:
            try:
                length = int(raw_length)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "invalid Content-Length header") from None
        self._stream = _BodyStream(self.rfile, length=length, chunked=chunked, limit=limit)
        if length is not None and length > limit:
            raise ApiError(
                413, f"Request exceeds the maximum allowed number of bytes ({limit}).",
                error_type="request_too_large",
            )
        return self._stream

    def _read_body(self, limit: int) -> bytes:
        return self._open_body(limit).read_all()

    def _finish_body(self) -> None:
        """Drop whatever the handler left unread, so the connection stays in step."""
        stream = getattr(self, "_stream", None)
        self._stream = None
        if stream is not None and not stream.done and not stream.drain():
            self.close_connection = True

    def _json_body(self, body: bytes, *, required: bool = True) -> Any:
        if not body:
            if required:
                raise ApiError(400, "request body is required (a JSON object)")
            return None
        content_type = self.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiError(400, f"Content-Type must be application/json, got {content_type or 'none'!r}")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None

    def _authenticate(self) -> str:
        key = self.headers.get("x-api-key")
        if not key:
            authorization = self.headers.get("Authorization", "")
            if authorization.lower().startswith("bearer "):
                key = authorization[7:].strip()
        if not key:
            raise ApiError(401, "x-api-key header is required", error_type="authentication_error")
        accepted = self.emu.settings.api_keys
        if accepted and key not in accepted:
            raise ApiError(401, "invalid x-api-key", error_type="authentication_error")
        return self.emu.key_id(key)

    # ------------------------------------------------------------------ dispatch

    def _handle(self, method: str) -> None:
        self._request_id = new_request_id()
        self._body = b""
        self._stream = None
        try:
            self._dispatch(method)
        finally:
            self._finish_body()

    def _dispatch(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = parse_qs(url.query)
            self.emu.count(f"{method} {_route_name(path)}")
            if path.startswith("/_emulator/"):
                self._body = self._read_body(self.emu.settings.max_request_bytes)
                self._control(method, path, query, self._take_body())
                return
            if method == "POST" and path == _BATCHES:
                # Parsed straight from the socket, a request at a time (validation.iter_batch_requests).
                self._open_body(self.emu.settings.max_batch_bytes)
            else:
                self._body = self._read_body(self.emu.settings.max_request_bytes)
            if self._inject_faults(method, path):
                return
            self._api(method, path, query)
        except ApiError as exc:
            self._finish_body()  # read the rest of the upload first, or the client may miss the answer
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # never a traceback to the client
            log.exception("unexpected error on %s %s", method, self.path.split("?")[0])
            self.close_connection = True
            try:
                self._send_error(ApiError(500, "Internal server error (emulator bug, see its log)"))
            except OSError:
                pass

    def _inject_faults(self, method: str, path: str) -> bool:
        """Apply latency / drop / HTTP error faults; True when the call was answered (or dropped)."""
        faults = self.emu.faults
        latency = faults.get("latency_seconds")
        if latency:
            time.sleep(float(latency))
        if faults.take_drop():
            self.emu.count("fault:drop_connection")
            self._drop()
            return True
        entry = faults.take_http_error(method, path)
        if entry is not None:
            status = entry["status"]
            self.emu.count(f"fault:http_{status}")
            headers = {}
            if entry.get("retry_after") is not None:
                value = float(entry["retry_after"])
                headers["retry-after"] = str(int(value)) if value.is_integer() else str(value)
            messages = {429: "Number of requests has exceeded your rate limit (injected fault)",
                        500: "Internal server error (injected fault)",
                        529: "Overloaded (injected fault)"}
            self._send_error(
                ApiError(status, messages.get(status, f"injected HTTP {status}"), headers=headers)
            )
            return True
        return False

    def _take_body(self) -> bytes:
        body, self._body = self._body, b""
        return body

    def _api(self, method: str, path: str, query: dict) -> None:
        parts = path.strip("/").split("/")
        # /v1/messages[/count_tokens | /batches[/{id}[/cancel | /results]]], /v1/models[/{id}]
        if parts[:1] != ["v1"] or len(parts) < 2 or parts[1] not in ("messages", "models"):
            raise ApiError(404, f"Not found: {path}", error_type="not_found_error")
        rest = parts[2:]
        key_id = self._authenticate()
        # [VER] the header is required and picks the rules; checked on every API call.
        api_version = versions.resolve(self.headers.get(versions.HEADER))
        if parts[1] == "models":
            answer = models_api.route(method, [unquote(part) for part in rest], query, self.emu.today())
            return self._send_json(200, answer)
        if not rest:
            self._allow(method, "POST")
            return self._messages(key_id, self._take_body(), api_version)
        if rest == ["count_tokens"]:
            self._allow(method, "POST")
            return self._count_tokens(self._take_body(), api_version)
        if rest[0] != "batches" or len(rest) > 3:
            raise ApiError(404, f"Not found: {path}", error_type="not_found_error")
        self.emu.limiter.check_batch_call()
        if len(rest) == 1:
            self._allow(method, "POST", "GET")
            if method == "POST":
                return self._create_batch(key_id, api_version)
            return self._list_batches(query)
        batch_id = rest[1]
        if len(rest) == 2:
            self._allow(method, "GET", "DELETE")
            if method == "GET":
                meta = self.emu.store.get(batch_id)
                return self._send_json(200, self.emu.store.api_object(meta, self._base_url()))
            self.emu.store.delete(batch_id)
            return self._send_json(200, {"id": batch_id, "type": "message_batch_deleted"})
        if rest[2] == "cancel":
            self._allow(method, "POST")
            meta = self.emu.store.cancel(batch_id)
            return self._send_json(200, self.emu.store.api_object(meta, self._base_url()))
        if rest[2] == "results":
            self._allow(method, "GET")
            results = self.emu.store.results_path(batch_id)
            cut = self.emu.faults.take_cut()
            if cut:
                self.emu.count("fault:cut_results")
            return self._send_file(results, "application/x-jsonl", cut=cut)
        raise ApiError(404, f"Not found: {path}", error_type="not_found_error")

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(405, f"Method {method} is not allowed here (allowed: {', '.join(allowed)})")

    # ------------------------------------------------------------------ API endpoints

    def _messages(self, key_id: str, body: bytes, api_version: str) -> None:
        params = self._json_body(body)
        emu = self.emu
        emu.limiter.check_message()
        if isinstance(params, dict):
            emu.received.append(record("messages", None, params, rfc3339(emu.clock.now())))
        outcome = emu.engine.run(
            params, key_id=key_id, message_id=random_id("msg_"), service_tier="standard", in_batch=False,
            api_version=api_version, day=emu.today(), errors=emu.answer_errors(),
        )
        emu.limiter.record_message_tokens(outcome.billed_input, outcome.output_tokens)
        self._send_bytes(200, outcome.message_json.encode(), "application/json")

    def _count_tokens(self, body: bytes, api_version: str) -> None:
        params = check_count_tokens_params(
            self._json_body(body), api_version=api_version, day=self.emu.today()
        )
        counted = request_tokens(params)
        check_breakpoints([p.ttl for p in counted.parts if p.ttl is not None])
        self._send_json(200, {"input_tokens": counted.total})

    def _create_batch(self, key_id: str, api_version: str) -> None:
        emu = self.emu
        stream = self._stream
        if stream is None or stream.done:
            raise ApiError(400, "request body is required (a JSON object with requests)")
        content_type = self.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiError(400, f"Content-Type must be application/json, got {content_type or 'none'!r}")
        store = emu.store
        batch_id, tmp = store.new_batch_dir()
        now = emu.clock.now()
        stamp = rfc3339(now)
        seen: set[str] = set()
        count = 0
        limit = emu.settings.max_batch_requests
        try:
            # Each request goes to disk as the bytes received (no re-serialising); the received log only
            # gets a placeholder (received.py): the per-request rows are parsed when it is read. A
            # thread writes while the body is parsed (the write releases the GIL, the parse holds it).
            with _ChunkWriter(tmp / "requests.jsonl") as requests:
                lines: list[bytes] = []
                size = 0
                for raw, item in iter_batch_requests(stream.read):
                    if count >= limit:
                        raise ApiError(
                            413,
                            f"requests: a batch holds at most {limit} requests",
                            error_type="request_too_large",
                        )
                    check_envelope(count, item, seen)
                    count += 1
                    if b"\n" in raw or b"\r" in raw:
                        raw = json.dumps(item, ensure_ascii=False).encode()  # one request per line
                    lines.append(raw)
                    size += len(raw)
                    if size >= CHUNK:  # one write per MB, not two per request
                        lines.append(b"")
                        requests.write(b"\n".join(lines))
                        lines, size = [], 0
                if lines:
                    lines.append(b"")
                    requests.write(b"\n".join(lines))
            if count == 0:
                raise ApiError(400, "requests: List should have at least 1 item after validation, not 0")
            emu.limiter.check_queue(store.queued_requests(), count)
            meta = {
                "id": batch_id,
                "seq": store.next_seq(),
                "created_at": now,
                "expires_at": now + EXPIRY_SECONDS,
                "processing_seconds": emu.processing_seconds(),
                "never_finish": bool(emu.faults.get("never_finish")),
                "faults": emu.faults.batch_snapshot(),
                "key_id": key_id,
                # The worker judges every request by the version the batch was created with [MIG].
                "api_version": api_version,
                "request_count": count,
                "status": "in_progress",
                "cancel_initiated_at": None,
                "ended_at": None,
                "archived_at": None,
                "computed": False,
            }
            store.commit(tmp, meta)
        except BodyError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ApiError(400, str(exc)) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        emu.received.append_batch(batch_id, store.dir(batch_id) / "requests.jsonl", stamp)
        emu.count("batch_requests_received", count)
        emu.worker.enqueue(batch_id)
        self._send_json(200, store.api_object(meta, self._base_url()))

    def _list_batches(self, query: dict) -> None:
        store = self.emu.store

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        raw_limit = one("limit")
        try:
            limit = 20 if raw_limit is None else int(raw_limit)
        except ValueError:
            raise ApiError(400, "limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise ApiError(400, "limit: Input should be between 1 and 1000")
        after_id, before_id = one("after_id"), one("before_id")
        ids = store.ids_newest_first()

        known = set(ids)
        if (after_id and after_id not in known) or (before_id and before_id not in known):
            # A cursor that names no batch has no position to page from. The reference documents no
            # error for it, and the SDK's own generated tests (which follow the API spec: any string is
            # a cursor) expect a page: an empty one, so a client paging on it stops (has_more false).
            return self._send_json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})

        def position(name: str, batch_id: str) -> int:
            return ids.index(batch_id)

        # after_id and before_id may come together: the API docs don't forbid it
        # (shared/reference/anthropic-api.md §5: "List: `limit` 1-1000 (default 20), `after_id`/`before_id`;
        # page {data, has_more, first_id, last_id}"; the List Message Batches reference: after_id "returns the
        # page of results immediately after this object", before_id "immediately before this object",
        # has_more "more results in the requested page direction"). Both = the batches strictly between the
        # two, newest first. The window is ids[lo:hi] (newest-first order; "after" = older).
        lo = position("after_id", after_id) + 1 if after_id else 0
        hi = max(lo, position("before_id", before_id)) if before_id else len(ids)
        if before_id:
            # Paging toward newer batches, as the SDK does whenever before_id is set (pagination.py:
            # next page = before_id=first_id, after_id kept): the `limit` nearest before before_id.
            start = max(lo, hi - limit)
            page, has_more = ids[start:hi], start > lo
        else:
            page, has_more = ids[lo : lo + limit], lo + limit < hi
        base = self._base_url()
        data = []
        for batch_id in page:
            try:
                data.append(store.api_object(store.get(batch_id), base))
            except ApiError:
                continue  # deleted meanwhile
        self._send_json(
            200,
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    # ------------------------------------------------------------------ control endpoints

    def _control(self, method: str, path: str, query: dict, body: bytes) -> None:
        emu = self.emu
        name = path[len("/_emulator/") :]
        payload = self._json_body(body, required=False) if body else None
        if name == "health":
            return self._send_json(200, {"ok": True})
        if name == "clock":
            if method == "POST":
                if not isinstance(payload, dict) or not ({"advance_seconds", "set"} & set(payload)):
                    raise ApiError(400, 'expected {"advance_seconds": N} or {"set": "<RFC 3339 time>"}')
                try:
                    if "set" in payload:
                        emu.clock.set(payload["set"])
                    if "advance_seconds" in payload:
                        emu.clock.advance(float(payload["advance_seconds"]))
                except (TypeError, ValueError) as exc:
                    raise ApiError(400, f"bad clock value: {exc}") from None
            else:
                self._allow(method, "GET", "POST")
            now = emu.clock.now()
            return self._send_json(200, {"now": rfc3339(now), "epoch": now, "offset_seconds": emu.clock.offset})
        if name == "faults":
            if method == "POST":
                try:
                    emu.faults.set(payload or {})
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None
            else:
                self._allow(method, "GET", "POST")
            return self._send_json(200, emu.faults.snapshot())
        if name == "script":
            if method == "POST":
                if not isinstance(payload, dict) or not isinstance(payload.get("answers"), dict):
                    raise ApiError(400, 'expected {"answers": {"<row text>": <directive>}}')
                try:
                    emu.responder.script(payload["answers"], replace=bool(payload.get("replace")))
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None
            elif method == "DELETE":
                emu.responder.clear_script()
            else:
                self._allow(method, "GET", "POST", "DELETE")
            return self._send_json(200, {"answers": emu.responder.script_snapshot()})
        if name == "received":
            self._allow(method, "GET")
            batch = (query.get("batch") or [None])[-1]
            if batch is None:
                size = emu.received.materialize()
                return self._send_file(emu.received.path, "application/x-jsonl", size=size)
            lines = [json.dumps(e, ensure_ascii=False) + "\n" for e in emu.received if e.get("batch") == batch]
            return self._send_bytes(200, "".join(lines).encode(), "application/x-jsonl")
        if name == "stats":
            self._allow(method, "GET")
            return self._send_json(200, emu.stats())
        if name == "worker":
            if method == "POST":
                if not isinstance(payload, dict) or not isinstance(payload.get("paused"), bool):
                    raise ApiError(400, 'expected {"paused": true|false}')
                emu.worker.pause() if payload["paused"] else emu.worker.resume()
            else:
                self._allow(method, "GET", "POST")
            return self._send_json(200, {"paused": emu.worker.paused})
        raise ApiError(404, f"unknown control endpoint {path}", error_type="not_found_error")


class _ChunkWriter:
    """A file written by a thread, a few chunks behind the caller (bounded: at most ``depth`` chunks
    wait). Leaving the ``with`` waits for every write; a write error is raised there."""

    def __init__(self, path: Path, depth: int = 8) -> None:
        import queue

        self._file = open(path, "wb")
        self._queue: "queue.Queue[bytes | None]" = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="emulator-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:
                try:
                    self._file.write(chunk)
                except BaseException as exc:  # reported to the caller at the end
                    self._error = exc

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def __enter__(self) -> "_ChunkWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._queue.put(None)
        self._thread.join()
        self._file.close()
        if self._error is not None and exc[0] is None:
            raise self._error


def _route_name(path: str) -> str:
    """Path with ids replaced, for the call counters."""
    parts = path.strip("/").split("/")
    if len(parts) >= 4 and parts[:3] == ["v1", "messages", "batches"]:
        parts[3] = "{id}"
    if len(parts) == 3 and parts[:2] == ["v1", "models"]:
        parts[2] = "{id}"
    return "/" + "/".join(parts)


