"""The nightly no-op run, short-circuited: nothing changed, so nothing is rescanned or compared.

A run that found nothing to send and nothing to change in the model's table leaves a mark
(``cb_noop_marks``): a signature of everything the table's rows are computed from. A later run whose
signature is the same returns no rows at once, without building the source scan, the pending set or
the output comparison, which on a million long texts are most of a no-op run (issue 13).

The signature covers, and so any change to one of them makes the run take the full path:
- the source: its row count and the sum of every row's fingerprint of key and text
  (``source.fingerprint_sum_sql``: the one part that reads every text, as any check for a changed
  text must);
- the state: each state table's row count and a sum of row hashes (whole rows; row id and text key
  for the append-only tables, which are the big ones), so a collected result, a submission, a retry
  macro's delete or a new version all count as a change;
- the settings: the output query's own text (versions, reclassify, attempts, the package's SQL) and
  the scan's (text column or template, length limit);
- the model's table: its row count (a table rebuilt or edited by hand is compared in full again).

Pass-through ``columns`` are not in the source fingerprint, so a classifier with ``columns`` always
takes the full path. A mark is only written by a run whose full comparison returned no row, so the
table is known to match the state it was made from; a failed materialisation cannot fake one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import source as source_rows

if TYPE_CHECKING:
    from .config import ClassifierConfig
    from .state import StateStore
    from .warehouse import Warehouse

MARKS = "cb_noop_marks"
# Rewritten every run (runs, locks, the marks themselves) or not read by the output (meta, preflights):
# not part of what the table's rows are computed from.
_NOT_READ = frozenset({"cb_runs", "cb_locks", MARKS, "cb_meta", "cb_preflights"})
# Append-only and large (a row per text or outcome): digested on the columns that identify a row and
# its outcome, not on wide ones (answers, messages), which cost most of a whole-row digest.
_NARROW = {
    "cb_results": ("version", "text_hash", "status", "attempt", "custom_id", "collected_at", "billed_usd"),
    "cb_request_items": ("custom_id", "item_id", "text_hash", "attempt"),
    "cb_source_prints": ("classifier", "scan", "fp", "text_hash", "truncated", "skip_reason"),
}


def eligible(cfg: "ClassifierConfig", this_sql: str | None) -> bool:
    """Whether runs of this classifier can be short-circuited at all."""
    return this_sql is not None and not cfg.dry_run and not cfg.columns


def state_signature(wh: "Warehouse", store: "StateStore") -> list[str]:
    """One value per state table the output depends on: its row count and an order-independent digest
    of its rows (``Warehouse.set_digest_sql``), so any append, update or delete changes it."""
    names = sorted(n for n in store.ddl if n not in _NOT_READ)
    parts = []
    for name in names:
        cols = _NARROW.get(name) or _columns(store.ddl[name])
        digest = wh.set_digest_sql(*(f"t.{wh.q(c)}" for c in cols))
        parts.append(f"SELECT {wh.text_sql('count(*)')} || ':' || coalesce({digest}, '') FROM {store.t[name]} t")
    row = wh.fetchall("SELECT " + ", ".join(f"({p})" for p in parts))[0]
    return [f"{n}={v}" for n, v in zip(names, row)]


def _columns(ddl: str) -> list[str]:
    """Column names of a state table's DDL (``name TYPE ...`` per line)."""
    return [line.split()[0] for line in ddl.strip().splitlines() if line.strip()]


def settings_signature(cfg: "ClassifierConfig", wh: "Warehouse", output_sql: str) -> str:
    return hashlib.sha256(json.dumps(
        [cfg.name, cfg.version, source_rows.scan_signature(wh, cfg), output_sql]).encode()).hexdigest()


def signature(*, settings: str, state: list[str], source: tuple[Any, Any], table_rows: int) -> str:
    return hashlib.sha256(json.dumps([settings, state, [str(s) for s in source], table_rows]).encode()).hexdigest()


def latest_mark(wh: "Warehouse", store: "StateStore", classifier: str, target: str) -> dict | None:
    rows = wh.fetch_dicts(
        f"SELECT signature, source, source_rows, lines, run_id FROM {store.t[MARKS]} "
        "WHERE classifier = ? AND target = ? ORDER BY marked_at DESC LIMIT 1", [classifier, target])
    return rows[0] if rows else None


def record_mark(wh: "Warehouse", store: "StateStore", *, classifier: str, target: str, sig: str, source: str,
                source_rows_n: int, lines: list[tuple[str, str]], run_id: str) -> None:
    """One append (a single atomic write): the latest mark per classifier and table is the one read."""
    wh.append(store.t[MARKS], {
        "classifier": [classifier], "target": [target], "signature": [sig], "source": [source],
        "source_rows": [source_rows_n], "lines": [json.dumps(lines)], "run_id": [run_id],
        "marked_at": [datetime.now(timezone.utc).replace(tzinfo=None)]})


def table_rows(wh: "Warehouse", this_sql: str) -> int:
    return int(wh.scalar(f"SELECT count(*) FROM {this_sql}"))


def source_signature(wh: "Warehouse", source_sql: str, cfg: "ClassifierConfig") -> tuple[Any, Any]:
    """(rows, sum of fingerprints) of the source as it is now: reads every text once."""
    return tuple(wh.fetchall(source_rows.fingerprint_sum_sql(wh, source_sql, cfg))[0])


def rows_signature(wh: "Warehouse", rows_table: str) -> tuple[Any, Any]:
    """The same figures from this run's scan (``cb_tmp_rows`` carries each row's fingerprint)."""
    return tuple(wh.fetchall(f"SELECT count(*), sum(fp) FROM {rows_table}")[0])
