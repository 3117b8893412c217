"""Offline emulator of the Anthropic Messages and Message Batches API.

Start it from Python::

    from claude_batch.emulator import Emulator

    with Emulator(state_dir="/tmp/emu", processing_seconds=0) as emu:
        client = emu.client()            # anthropic.Anthropic(base_url=emu.base_url, api_key=...)
        batch = client.messages.batches.create(requests=[...])
        emu.advance_clock(3600)          # jump the virtual clock
        ...

from the command line (``python -m claude_batch.emulator --port 8765 --state-dir .emulator`` or
``claude-batch-emulator``), or in pytest through the ``emulator`` fixture (pytest_plugin.py).

This module stays light: the server, the SDK and everything else are imported on ``start()``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import ClaudeBatchError

if TYPE_CHECKING:
    from .server import EmulatorServer

__all__ = ["Emulator", "start_emulator", "DEFAULT_API_KEY"]

DEFAULT_API_KEY = "sk-ant-emulator-test-key"


class EmulatorNotRunning(ClaudeBatchError, RuntimeError):
    """A control method was called before ``start()`` or after ``stop()``."""


class Emulator:
    """An emulator server running in a background thread of this process.

    Use as a context manager, or call ``start()`` and ``stop()``. Every control endpoint has a
    Python method here, acting on the same state as the HTTP endpoint.
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        processing_seconds: float = 0.0,
        cancel_seconds: float = 0.0,
        api_keys: Sequence[str] | None = None,
        faults: dict | None = None,
        max_batch_requests: int = 100_000,
        max_batch_bytes: int | None = None,
        max_request_bytes: int | None = None,
        worker_processes: int | None = None,
        worker_paused: bool = False,
        verbose: bool = False,
    ) -> None:
        from .config import Settings

        self._own_dir = state_dir is None
        directory = Path(tempfile.mkdtemp(prefix="claude-batch-emulator-")) if state_dir is None else Path(state_dir)
        settings = Settings(
            state_dir=directory,
            host=host,
            port=port,
            processing_seconds=processing_seconds,
            cancel_seconds=cancel_seconds,
            api_keys=tuple(api_keys or ()),
            faults=dict(faults or {}),
            max_batch_requests=max_batch_requests,
            worker_processes=worker_processes,
            worker_paused=worker_paused,
            verbose=verbose,
        )
        if max_batch_bytes is not None:
            settings.max_batch_bytes = max_batch_bytes
        if max_request_bytes is not None:
            settings.max_request_bytes = max_request_bytes
        self.settings = settings
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life

    def start(self) -> "Emulator":
        from .server import EmulatorServer

        if self._server is not None:
            return self
        self._server = EmulatorServer(self.settings)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="claude-batch-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self._thread = None
        if self._own_dir:
            shutil.rmtree(self.settings.state_dir, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def server(self) -> "EmulatorServer":
        if self._server is None:
            raise EmulatorNotRunning("the emulator is not running; call start() or use it as a context manager")
        return self._server

    # ------------------------------------------------------------------ where it is

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.state_dir)

    @property
    def api_key(self) -> str:
        """A key the emulator accepts (the first configured one, else a fixed test key)."""
        return self.settings.api_keys[0] if self.settings.api_keys else DEFAULT_API_KEY

    def client(self, **kwargs: Any):
        """An ``anthropic.Anthropic`` client pointed at this emulator."""
        import anthropic

        kwargs.setdefault("api_key", self.api_key)
        return anthropic.Anthropic(base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any):
        """An ``anthropic.AsyncAnthropic`` client pointed at this emulator."""
        import anthropic

        kwargs.setdefault("api_key", self.api_key)
        return anthropic.AsyncAnthropic(base_url=self.base_url, **kwargs)

    # ------------------------------------------------------------------ clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.server.clock.now(), tz=timezone.utc)

    def advance_clock(self, seconds: float) -> datetime:
        """Move the virtual clock forward (or back, with a negative number)."""
        self.server.clock.advance(seconds)
        return self.now()

    def set_clock(self, when: datetime | str | float) -> datetime:
        self.server.clock.set(when)
        return self.now()

    # ------------------------------------------------------------------ faults and answers

    def set_faults(self, config: dict | None = None, **keys: Any) -> dict:
        """Replace the fault configuration (see faults.py); returns it."""
        merged = {**(config or {}), **keys}
        self.server.faults.set(merged)
        return self.server.faults.snapshot()

    def faults(self) -> dict:
        return self.server.faults.snapshot()

    def script(self, answers: dict[str, Any], *, replace: bool = False) -> None:
        """Scripted answers per row text (directives: see responder.py)."""
        self.server.responder.script(answers, replace=replace)

    def clear_script(self) -> None:
        self.server.responder.clear_script()

    def set_responder(self, responder: Callable[[str, tuple, dict], Any] | None) -> None:
        """``responder(row_text, labels, params)`` returns a directive, or None for the default."""
        self.server.responder.set_hook(responder)

    # ------------------------------------------------------------------ observing

    def received(self, batch_id: str | None = None) -> list[dict]:
        """Every request received (one entry per batch request and per /v1/messages call)."""
        return [e for e in self.server.received if batch_id is None or e.get("batch") == batch_id]

    def stats(self) -> dict:
        return json.loads(json.dumps(self.server.stats()))

    def pause_worker(self) -> None:
        self.server.worker.pause()

    def resume_worker(self) -> None:
        self.server.worker.resume()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until the batch worker has processed every queued batch."""
        return self.server.worker.wait_idle(timeout)


def start_emulator(state_dir: str | Path | None = None, **kwargs: Any) -> Emulator:
    """Start an emulator (see ``Emulator`` for the options); stop it with ``.stop()``."""
    return Emulator(state_dir, **kwargs).start()


