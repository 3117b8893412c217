"""Command line: ``python -m claude_batch.emulator`` / ``claude-batch-emulator``.

Prints ``claude-batch-emulator listening on http://HOST:PORT`` once it accepts connections (use
``--port 0`` for a free port and read it from that line), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def _faults_arg(value: str) -> dict:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("--faults must be a JSON object")
    return parsed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="claude-batch-emulator",
        description="Offline emulator of the Anthropic Messages and Message Batches API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--state-dir", default=".emulator", help="where batches and the clock are kept")
    parser.add_argument(
        "--processing-seconds", type=float,
        default=float(os.environ.get("CLAUDE_BATCH_EMULATOR_PROCESSING_SECONDS", "3")),
        help="time from create to ended on the virtual clock (default 3; 0 for tests)",
    )
    parser.add_argument("--cancel-seconds", type=float, default=0.0, help="time a batch stays canceling")
    parser.add_argument(
        "--api-key", action="append", default=[],
        help="accepted API key (repeatable; also CLAUDE_BATCH_EMULATOR_API_KEYS, comma-separated). "
        "With none, any non-empty key is accepted.",
    )
    parser.add_argument(
        "--faults", type=_faults_arg, default=None,
        help="fault configuration as JSON or @file (also CLAUDE_BATCH_EMULATOR_FAULTS)",
    )
    parser.add_argument("--max-batch-requests", type=int, default=100_000)
    parser.add_argument(
        "--worker-processes", type=int, default=None,
        help="helper processes answering big batches (default: one per CPU, at most 4, none on 1 CPU; 0 or 1: none)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request line")
    parser.add_argument(
        "--extra-models", default=None,
        help="JSON file: a list of model entries shaped as claude_batch/_data/models.json's, known to this "
             "emulator beyond the package's table (to test a model the product does not know)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from .config import EXTRA_MODELS_ENV, Settings, register_extra_models_from_env
    from .server import EmulatorServer

    if args.extra_models:
        os.environ[EXTRA_MODELS_ENV] = str(Path(args.extra_models).resolve())  # helper processes too
    register_extra_models_from_env()

    keys = list(args.api_key)
    env_keys = os.environ.get("CLAUDE_BATCH_EMULATOR_API_KEYS", "")
    keys += [k.strip() for k in env_keys.split(",") if k.strip()]
    faults = args.faults
    if faults is None and os.environ.get("CLAUDE_BATCH_EMULATOR_FAULTS"):
        faults = _faults_arg(os.environ["CLAUDE_BATCH_EMULATOR_FAULTS"])
    settings = Settings(
        state_dir=Path(args.state_dir),
        host=args.host,
        port=args.port,
        processing_seconds=args.processing_seconds,
        cancel_seconds=args.cancel_seconds,
        api_keys=tuple(keys),
        faults=faults or {},
        max_batch_requests=args.max_batch_requests,
        worker_processes=args.worker_processes,
        verbose=args.verbose,
    )
    try:
        server = EmulatorServer(settings)
    except (OSError, ValueError) as exc:
        print(f"claude-batch-emulator: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"claude-batch-emulator listening on http://{args.host}:{server.port}", flush=True)
    server.serve_forever()
    server.worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
