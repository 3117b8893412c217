"""One run's record and what a stage may use of the run it works for.

:class:`RunReport` is the row a run adds to ``cb_runs`` (and its summary line); :class:`RunContext`
is the interface the stages below the orchestrator (``budget``, ``submissions``, ``realtime``) take,
so that they need not import ``pipeline`` (``pipeline.Pipeline`` is one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .config import ClassifierConfig
    from .state import StateStore
    from .warehouse import Warehouse


@dataclass
class RunReport:
    run_id: str
    classifier: str
    version: str
    mode: str
    dry_run: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))
    source_rows: int = 0
    pending_texts: int = 0
    submitted_texts: int = 0
    submitted_requests: int = 0
    submitted_batches: int = 0
    collected_requests: int = 0
    collected_items: int = 0
    estimated_usd: float = 0.0
    billed_usd: float = 0.0
    naive_usd: float = 0.0
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict:
        return {
            "run_id": self.run_id, "classifier": self.classifier, "version": self.version, "mode": self.mode,
            "dry_run": self.dry_run, "started_at": self.started_at,
            "finished_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "source_rows": self.source_rows, "pending_texts": self.pending_texts,
            "submitted_texts": self.submitted_texts, "submitted_requests": self.submitted_requests,
            "submitted_batches": self.submitted_batches, "collected_requests": self.collected_requests,
            "collected_items": self.collected_items, "estimated_usd": self.estimated_usd,
            "billed_usd": self.billed_usd, "naive_usd": self.naive_usd, "note": "; ".join(self.notes) or None,
        }

    def summary(self) -> str:
        saved = self.naive_usd - self.billed_usd
        pct = f" ({saved / self.naive_usd:.0%})" if self.naive_usd > 0 else ""
        return (
            f"{self.classifier} v{self.version}: collected {self.collected_items} text(s) in {self.collected_requests} "
            f"request(s), billed ${self.billed_usd:.4f}, naive ${self.naive_usd:.4f}, saved ${saved:.4f}{pct}; "
            f"submitted {self.submitted_texts} of {self.pending_texts} pending text(s) in {self.submitted_requests} "
            f"request(s) / {self.submitted_batches} batch(es), estimated ${self.estimated_usd:.4f}"
            + (" [dry run: nothing sent]" if self.dry_run else "")
        )


class RunContext(Protocol):
    """What a stage needs of the run it works for."""

    cfg: "ClassifierConfig"
    wh: "Warehouse"
    store: "StateStore"
    run: RunReport

    @property
    def client(self) -> Any:
        """The synchronous API client, made on first use."""

    @property
    def given_client(self) -> Any | None:
        """The client this run has so far (the caller's, sync or async, or one made on first use), without making one."""
