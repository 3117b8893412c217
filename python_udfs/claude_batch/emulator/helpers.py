"""Helper processes for the CPU-heavy, pure part of answering big batches.

Python threads share one core (the GIL), so the worker hands chunks of request lines to a few
helper processes (``python -m claude_batch.emulator.helpers``) and gets back ``Prepared``
answers, in order. They are plain subprocesses talking pickle over their stdin/stdout, not
``multiprocessing``: that would re-import the caller's ``__main__`` module in every child, which
breaks scripts that start an Emulator without an ``if __name__ == "__main__"`` guard.

A helper exits when its stdin closes, so helpers never outlive the emulator. Helpers import only
the emulator's modules (and tokens/catalog/prompts), not the ``claude_batch`` package's own
``__init__`` (which loads the pipeline, the SDK and dbt: seconds of start-up for nothing).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ClaudeBatchError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../claude_batch
# Registers a bare ``claude_batch`` package (no __init__ run) before importing the helper.
_BOOTSTRAP = (
    "import sys, types; package = types.ModuleType('claude_batch'); "
    "package.__path__ = [sys.argv[1]]; sys.modules['claude_batch'] = package; "
    "from claude_batch.emulator.helpers import main; main()"
)


class HelperError(ClaudeBatchError, RuntimeError):
    """A helper process failed or died."""


def _send(stream, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big"))
    stream.write(data)
    stream.flush()


def _receive(stream) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class HelperPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._procs: list[subprocess.Popen] = []

    def _start(self) -> None:
        for _ in range(self.size):
            self._procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _BOOTSTRAP, str(_PACKAGE_DIR)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )

    def map_ordered(self, chunks: Iterable[list], script: dict, context: tuple) -> Iterator[list]:
        """Results of ``compute_lines`` for each chunk, in the chunks' order. ``context``:
        ``(api_version, day, answer_errors)`` of the batch (the rules its requests are judged by,
        and its error model configuration or None)."""
        if not self._procs:
            self._start()
        chunks = iter(chunks)
        pending: deque[subprocess.Popen] = deque()
        try:
            for proc in self._procs:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                _send(proc.stdin, (script, context, chunk))
                pending.append(proc)
            while pending:
                proc = pending.popleft()
                status, value = _receive(proc.stdout)
                if status != "ok":
                    raise HelperError(f"helper process failed:\n{value}")
                chunk = next(chunks, None)
                if chunk is not None:
                    _send(proc.stdin, (script, context, chunk))
                    pending.append(proc)
                yield value
        except (EOFError, OSError, pickle.PickleError) as exc:
            self.close()
            raise HelperError(f"helper process died: {exc!r}") from exc
        finally:
            if pending:
                # Abandoned part-way (stop, error): helpers hold unread answers, start afresh.
                self.close()

    def close(self) -> None:
        procs, self._procs = self._procs, []
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


def main() -> None:
    from .config import register_extra_models_from_env
    from .responder import Responder
    from .worker import compute_lines

    register_extra_models_from_env()  # the extra models of the emulator that started us

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    responder = Responder()
    while True:
        try:
            script, (api_version, day, errors), lines = _receive(stdin)
        except EOFError:
            return
        try:
            responder.script(script, replace=True)
            result: tuple[str, Any] = (
                "ok", compute_lines(responder, lines, api_version=api_version, day=day, errors=errors))
        except Exception:
            result = ("error", traceback.format_exc())
        _send(stdout, result)


