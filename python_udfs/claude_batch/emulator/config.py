"""Server settings (one object, filled by the CLI, the Emulator class or the pytest fixture)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024


@dataclass
class Settings:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    processing_seconds: float = 0.0  # time from create to ended (virtual clock)
    cancel_seconds: float = 0.0  # time a batch stays `canceling`
    api_keys: tuple[str, ...] = ()  # accepted keys; empty: any non-empty key
    faults: dict = field(default_factory=dict)
    max_batch_requests: int = 100_000
    max_batch_bytes: int = 256 * MB
    max_request_bytes: int = 32 * MB  # Messages, count_tokens and every other endpoint
    read_timeout: float = 300.0  # idle keep-alive connections are closed after this
    worker_processes: int | None = None  # helper processes for big batches; None: one per CPU (max 4), none on 1 CPU
    worker_paused: bool = False  # start with batch processing paused (restart tests)
    verbose: bool = False
