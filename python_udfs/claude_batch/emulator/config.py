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


# Models this emulator process knows beyond the package's table (next month's model, say), to test
# how the product treats a model it does not know. The variable is inherited by the helper processes.
EXTRA_MODELS_ENV = "CLAUDE_BATCH_EMULATOR_EXTRA_MODELS"


def register_extra_models(path: str | Path) -> list[str]:
    """Register the entries of a JSON file (a list shaped as models.json's ``models``) in this
    process's catalog; returns their ids. For an emulator in a process of its own (the CLI): in the
    product's process the product would know them too."""
    import json

    from .. import catalog

    ids = []
    for entry in json.loads(Path(path).read_text(encoding="utf-8")):
        catalog.register(catalog.model_from_entry(entry))
        ids.append(entry["id"])
    return ids


def register_extra_models_from_env() -> None:
    import os

    if os.environ.get(EXTRA_MODELS_ENV):
        register_extra_models(os.environ[EXTRA_MODELS_ENV])
