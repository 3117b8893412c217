"""The state tables in the warehouse: their schema, and every state transition as one transaction.

The unit of work is a *text*: a (classifier version, text hash) pair; source rows point at it through
the hash of their text, so identical texts are sent once and fan out. A request carries one or more
texts (packing), each an *item* of that request (the tables' ``item_id``, ``item_count`` and
``cb_request_items`` name a text's place in a request), and a batch carries requests. State machine
of a request::

    submitting ──create answered──▶ in_flight ──batch ended, results written──▶ succeeded | errored
        │                              ▲                                        | expired | canceled
        └── crash: reconcile with the API's batch list ───┘
        └── nothing found after the grace period ──▶ abandoned (texts pending again, no attempt used)

A text is *pending* when it has no usable result under an accepted version and no request of it is
``submitting`` or ``in_flight``. A result is usable unless it is retryable (``errored`` other than
``invalid_request_error``, ``expired``, ``canceled``, ``missing``, ``invalid_output``) with attempts
left. Crash windows, and why each is safe, are in docs/state-machine.md.

No transition needs a multi-table transaction: each is a sequence of single-table writes
(``Warehouse.append`` / ``update`` / ``update_from`` / ``delete``, each atomic and idempotent when
repeated), ordered so that the write to ``cb_batches`` comes last and is the commit point.
Readers trust a submission's requests and items only through its ``cb_batches`` row: rows of a
key with no such row (a crash mid-intent) are ignored and swept (``sweep_uncommitted``); requests
that lag behind their submission's status (a crash after the commit point) are rolled forward
(``roll_forward``) at the start of the next run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Sequence

from . import statuses
from ._crashpoints import checkpoint
from .statuses import BatchStatus, Outcome
from .warehouse import Sql, Warehouse, quote_literal

RETRYABLE_STATUSES = statuses.RETRYABLE
IN_FLIGHT_STATUSES = statuses.IN_FLIGHT
# Statuses of a submission (cb_batches) whose requests may still be submitting or in flight.
OPEN_SUBMISSION_STATUSES = (BatchStatus.SUBMITTING, BatchStatus.IN_PROGRESS, BatchStatus.CANCELING, BatchStatus.ENDED)

# Tables are created with CREATE TABLE IF NOT EXISTS; columns are documented in models/claude_batch_state.yml.
_DDL = {
    "cb_versions": """
        classifier VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        model VARCHAR,
        first_seen_at TIMESTAMP,
        settings_json VARCHAR,
        escalates VARCHAR
    """,
    "cb_batches": """
        submission_key VARCHAR NOT NULL,
        batch_id VARCHAR,
        classifier VARCHAR,
        version VARCHAR,
        model VARCHAR,
        mode VARCHAR,
        status VARCHAR,
        request_count INTEGER,
        item_count INTEGER,
        body_bytes BIGINT,
        succeeded INTEGER,
        errored INTEGER,
        canceled INTEGER,
        expired INTEGER,
        intent_at TIMESTAMP,
        created_at TIMESTAMP,
        expires_at TIMESTAMP,
        ended_at TIMESTAMP,
        collected_at TIMESTAMP,
        error VARCHAR,
        run_id VARCHAR
    """,
    "cb_requests": """
        custom_id VARCHAR NOT NULL,
        submission_key VARCHAR,
        batch_id VARCHAR,
        classifier VARCHAR,
        version VARCHAR,
        model VARCHAR,
        attempt INTEGER,
        item_count INTEGER,
        prefix_tokens INTEGER,
        cached_prefix BOOLEAN,
        row_chars BIGINT,
        status VARCHAR,
        error_type VARCHAR,
        error_message VARCHAR,
        input_tokens BIGINT,
        output_tokens BIGINT,
        cache_write_5m_tokens BIGINT,
        cache_write_1h_tokens BIGINT,
        cache_read_tokens BIGINT,
        service_tier VARCHAR,
        billed_usd DOUBLE,
        naive_usd DOUBLE,
        collected_at TIMESTAMP,
        thinking_tokens BIGINT
    """,
    "cb_request_items": """
        custom_id VARCHAR NOT NULL,
        item_id INTEGER NOT NULL,
        version VARCHAR,
        text_hash {text_key},
        attempt INTEGER,
        row_chars INTEGER
    """,
    "cb_results": """
        version VARCHAR NOT NULL,
        text_hash {text_key} NOT NULL,
        status VARCHAR,
        labels {string_list},
        raw_answer VARCHAR,
        error_type VARCHAR,
        error_message VARCHAR,
        custom_id VARCHAR,
        batch_id VARCHAR,
        attempt INTEGER,
        model VARCHAR,
        classifier VARCHAR,
        collected_at TIMESTAMP,
        billed_usd DOUBLE,
        naive_usd DOUBLE
    """,
    "cb_runs": """
        run_id VARCHAR NOT NULL,
        classifier VARCHAR,
        version VARCHAR,
        mode VARCHAR,
        dry_run BOOLEAN,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        source_rows BIGINT,
        pending_texts BIGINT,
        submitted_texts BIGINT,
        submitted_requests BIGINT,
        submitted_batches BIGINT,
        collected_requests BIGINT,
        collected_items BIGINT,
        estimated_usd DOUBLE,
        billed_usd DOUBLE,
        naive_usd DOUBLE,
        note VARCHAR
    """,
    "cb_locks": """
        classifier VARCHAR NOT NULL,
        owner VARCHAR,
        acquired_at TIMESTAMP
    """,
    "cb_meta": """
        key VARCHAR NOT NULL,
        value VARCHAR
    """,
    # One row per preflight call: the first pack of a classifier version sent as one real-time
    # request before any batch, so that an API that refuses our requests fails the run in seconds.
    "cb_preflights": """
        classifier VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        model VARCHAR,
        api_version VARCHAR,
        sdk_version VARCHAR,
        status VARCHAR,
        custom_id VARCHAR,
        message VARCHAR,
        checked_at TIMESTAMP
    """,
    # What the last runs computed per source row, by a fingerprint of its key and raw text: a run
    # re-hashes (md5) only rows that are new or changed, the expensive part of a nightly no-op run on
    # long texts (source.scan_sql). Derived data: losing it costs one full hashing pass, nothing else.
    "cb_source_prints": """
        classifier VARCHAR NOT NULL,
        scan VARCHAR NOT NULL,
        fp {fingerprint} NOT NULL,
        text_hash {text_key},
        truncated BOOLEAN,
        skip_reason VARCHAR
    """,
    # One row per run that found nothing to send and nothing to change in the model's table: the
    # signature of what the table was computed from. A run with the same signature skips the scan and
    # the comparison (noop.py). Derived data: losing it costs one full no-op run.
    "cb_noop_marks": """
        classifier VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        signature VARCHAR NOT NULL,
        source VARCHAR,
        source_rows BIGINT,
        lines VARCHAR,
        run_id VARCHAR,
        marked_at TIMESTAMP
    """,
}

_VIEWS = {
    # The result that counts for each (version, text): a success if there ever was one, else the latest;
    # with every attempt's cost. cb_results itself is append-only (one row per outcome), which keeps
    # collecting a plain INSERT; one aggregate (not a window) keeps reading it fast at a million texts.
    "cb_current_results": """
        SELECT r.*, w.attempts, w.attempts_billed_usd, w.attempts_naive_usd
        FROM {cb_results} r JOIN ({per_version}) w ON {rowid_r} = w.rid
    """,
    # Cost per batch (a realtime run counts as one "batch" with mode = 'realtime'). Requests of an
    # abandoned submission never reached the API (nothing billed): not counted as requests or items.
    "cb_cost_by_batch": """
        SELECT b.submission_key, b.batch_id, b.classifier, b.version, b.model, b.mode, b.status,
               b.created_at, b.collected_at,
               count(r.custom_id) FILTER (WHERE r.status <> 'abandoned') AS requests,
               coalesce(sum(r.item_count) FILTER (WHERE r.status <> 'abandoned'), 0) AS items,
               sum(r.input_tokens) AS input_tokens,
               sum(r.output_tokens) AS output_tokens,
               sum(r.thinking_tokens) AS thinking_tokens,
               sum(r.cache_write_5m_tokens) + sum(r.cache_write_1h_tokens) AS cache_write_tokens,
               sum(r.cache_read_tokens) AS cache_read_tokens,
               sum(r.billed_usd) AS billed_usd,
               sum(r.naive_usd) AS naive_usd,
               sum(r.naive_usd) - sum(r.billed_usd) AS saved_usd
        FROM {cb_batches} b LEFT JOIN {cb_requests} r ON r.submission_key = b.submission_key
        GROUP BY b.submission_key, b.batch_id, b.classifier, b.version, b.model, b.mode, b.status,
                 b.created_at, b.collected_at
    """,
    # Cost per item (version, text): every attempt it took, shared evenly with the pack it rode in.
    "cb_cost_by_text": """
        SELECT version, text_hash, count(*) AS attempts,
               sum(billed_usd) AS billed_usd, max(naive_usd) AS naive_usd
        FROM {cb_results}
        GROUP BY version, text_hash
    """,
    # Cost per run: what the submissions each run made were billed (whichever run collected them), from
    # the batches and requests themselves. A run killed before it wrote its cb_runs row is still here
    # (finished = false), known from the submissions it recorded; so the view always sums to the bill.
    "cb_cost_by_run": """
        WITH subs AS (
            SELECT b.run_id, any_value(b.classifier) AS classifier, any_value(b.version) AS version,
                   any_value(b.mode) AS mode, min(b.intent_at) AS first_intent_at,
                   count(*) FILTER (WHERE b.status <> 'abandoned') AS submitted_batches
            FROM {cb_batches} b GROUP BY b.run_id
        ),
        reqs AS (
            SELECT b.run_id, count(*) AS submitted_requests, sum(r.item_count) AS submitted_texts,
                   count(*) FILTER (WHERE r.status IN ('submitting', 'in_flight')) AS requests_in_flight,
                   count(r.collected_at) AS collected_requests,
                   sum(r.billed_usd) AS billed_usd, sum(r.naive_usd) AS naive_usd
            FROM {cb_batches} b JOIN {cb_requests} r ON r.submission_key = b.submission_key
            WHERE r.status <> 'abandoned'
            GROUP BY b.run_id
        )
        SELECT coalesce(u.run_id, s.run_id) AS run_id, coalesce(u.classifier, s.classifier) AS classifier,
               coalesce(u.version, s.version) AS version, coalesce(u.mode, s.mode) AS mode,
               coalesce(u.dry_run, false) AS dry_run, coalesce(u.started_at, s.first_intent_at) AS started_at,
               u.finished_at, u.run_id IS NOT NULL AS finished,
               coalesce(q.submitted_texts, 0) AS submitted_texts,
               coalesce(q.submitted_requests, 0) AS submitted_requests,
               coalesce(s.submitted_batches, 0) AS submitted_batches,
               coalesce(q.requests_in_flight, 0) AS requests_in_flight,
               u.collected_items, u.estimated_usd,
               -- 0 until something of the run's is collected; NULL only for a model with no prices
               CASE WHEN coalesce(q.collected_requests, 0) = 0 THEN 0 ELSE q.billed_usd END AS billed_usd,
               CASE WHEN coalesce(q.collected_requests, 0) = 0 THEN 0 ELSE q.naive_usd END AS naive_usd,
               CASE WHEN coalesce(q.collected_requests, 0) = 0 THEN 0 ELSE q.naive_usd - q.billed_usd END AS saved_usd,
               u.note
        FROM {cb_runs} u
        FULL OUTER JOIN subs s ON s.run_id = u.run_id
        LEFT JOIN reqs q ON q.run_id IS NOT DISTINCT FROM coalesce(u.run_id, s.run_id)
    """,
    # Rows for human review (escalate_to, docs/quality.md): every text a classifier version answered
    # 'unsure' (its current result), with what each escalation version of it answered (NULL while
    # none has): the stronger model's labels, status and cost. Join to a classifier's table by text_hash.
    "cb_review": """
        SELECT r.classifier, r.version, r.text_hash, 'unsure' AS reason, r.labels AS first_labels,
               r.model AS first_model, r.collected_at AS first_collected_at,
               ev.version AS escalation_version, e.status AS escalation_status, e.labels AS escalated_labels,
               e.model AS escalation_model, e.error_type AS escalation_error, e.attempts AS escalation_attempts,
               e.collected_at AS escalated_at,
               r.attempts_billed_usd + coalesce(e.attempts_billed_usd, 0) AS billed_usd
        FROM {cb_current_results} r
        JOIN {cb_versions} v ON v.classifier = r.classifier AND v.version = r.version AND v.escalates IS NULL
        LEFT JOIN {cb_versions} ev ON ev.classifier = r.classifier AND ev.escalates = r.version
        LEFT JOIN {cb_current_results} e ON e.version = ev.version AND e.text_hash = r.text_hash
        WHERE r.status = 'succeeded' AND {unsure_r}
    """,
}


@dataclass(kw_only=True)
class Submission:
    """A ``cb_batches`` row: the intent's columns first (what ``record_intent`` writes), then what the
    API's answers add (read back by ``open_submissions``)."""

    submission_key: str
    batch_id: str | None = None
    classifier: str
    version: str
    model: str
    mode: str  # "batch" or "realtime"
    status: BatchStatus = BatchStatus.SUBMITTING
    request_count: int
    item_count: int
    body_bytes: int
    intent_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))
    run_id: str | None
    # Set after the intent, from the API's answers.
    created_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    collected_at: datetime | None = None
    error: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Submission":
        return cls(**{f.name: row.get(f.name) for f in fields(cls)})

    def intent(self) -> dict[str, list]:
        """The intent's columns, one value each (what is written before the create call)."""
        return {k: [v] for k, v in asdict(self).items() if k in _INTENT_COLUMNS}


_INTENT_COLUMNS = ("submission_key", "batch_id", "classifier", "version", "model", "mode", "status", "request_count",
                   "item_count", "body_bytes", "intent_at", "run_id")


class StateStore:
    """State-table operations. Every method that changes state is one transaction."""

    def __init__(self, wh: Warehouse):
        self.wh = wh
        self.result_writes = 0  # bumped by every write to cb_results (readers cache summaries of it)
        self.t = {name: wh.state_table(name) for name in [*_DDL, *_VIEWS]}
        self.ddl = {name: cols.format(text_key=wh.text_key_type(), fingerprint=wh.fingerprint_type(),
                                      string_list=wh.string_list_type())
                    for name, cols in _DDL.items()}

    # ------------------------------------------------------------------ schema
    def ensure(self) -> None:
        """Create or upgrade the state tables and views; a no-op check (one query) once they are current.

        A nightly run with nothing to do should cost little more than reading the source, so the
        DDL is skipped when ``cb_meta`` says this schema (tables, views) is already in place.
        """
        views = {name: body.format(**self.t, per_version=self.per_version_sql(), rowid_r=self.wh.row_id_sql("r"),
                                   unsure_r=self.wh.list_contains_sql("r.labels", "'unsure'"))
                 for name, body in _VIEWS.items()}
        key_scheme = self.wh.TEXT_KEY_SCHEME
        schema = hashlib.sha256(json.dumps([self.ddl, views, key_scheme], sort_keys=True).encode()).hexdigest()[:16]
        # No statement here may fail: inside dbt's open transaction a failed one aborts it.
        names = [*_DDL, *_VIEWS]
        if set(names) <= self.wh.state_relations():
            stored = self.wh.scalar(f"SELECT max(value) FROM {self.t['cb_meta']} WHERE key = 'schema'")
            if stored == schema:
                return
        self.wh.ensure_schema()
        present = self.wh.state_columns()
        for name, cols in self.ddl.items():
            if name in present:
                self._upgrade(name, cols, present[name])
            else:
                self.wh.create_table(self.t[name], cols)
        for name, body in views.items():
            self.wh.create_view(self.t[name], body)
        self._convert_text_keys(key_scheme)
        self._set_meta("schema", schema)

    def _set_meta(self, key: str, value: str) -> None:
        self.wh.replace_where(self.t["cb_meta"], "key = ?", "SELECT ?, ?", [key, key, value])

    def _convert_text_keys(self, scheme: str) -> None:
        """State written under the earlier key scheme (``md5(text)::UUID``, or its string form, which
        ``_upgrade`` has made a UUID) gets this scheme's keys for the same texts, in one transaction
        with the marker, so results keep matching their texts and nothing is sent again."""
        meta = self.t["cb_meta"]
        if self.wh.scalar(f"SELECT max(value) FROM {meta} WHERE key = 'text_key'") == scheme:
            return
        self.wh.upgrade_text_keys([self.t["cb_results"], self.t["cb_request_items"]], meta, scheme)

    def _upgrade(self, name: str, cols: str, present: dict[str, str]) -> None:
        """A table written by an older release: add the columns it lacks (nothing is dropped), and
        convert a column whose type changed (text keys were md5 strings), values unchanged."""
        wanted = {c.split()[0]: c.split()[1] for c in cols.split(",")}
        retype = [c for c, typ in wanted.items() if c in present and present[c] != typ]
        if not retype:
            for col, typ in wanted.items():
                if col not in present:
                    self.wh.add_column(self.t[name], col, typ)
            return
        # A type change rebuilds the table: the new layout plus any column only the old one has.
        extra = ", ".join(f"{self.wh.q(c)} {typ}" for c, typ in present.items() if c not in wanted)
        copy = {c: (f"CAST({self.wh.q(c)} AS {wanted[c]})" if c in retype else self.wh.q(c)) for c in present}
        self.wh.rebuild_table(self.t[name], cols + (", " + extra if extra else ""), copy)

    def record_version(self, classifier: str, version: str, model: str, settings: dict,
                       escalates: str | None = None) -> None:
        """``escalates``: for the version that answers another version's unsure rows again (escalate_to),
        that version; such a version is never one whose results count on their own (accepted_versions)."""
        exists = self.wh.scalar(
            f"SELECT count(*) FROM {self.t['cb_versions']} WHERE classifier = ? AND version = ?",
            [classifier, version],
        )
        if not exists:
            self.wh.append_select(
                self.t["cb_versions"], ["classifier", "version", "model", "first_seen_at", "settings_json", "escalates"],
                f"SELECT ?, ?, ?, {self.wh.now_sql()}, ?, ?",
                [classifier, version, model, json.dumps(settings, default=str, sort_keys=True), escalates],
            )

    def accepted_versions(self, classifier: str, version: str, reclassify: bool) -> list[str]:
        """Versions whose results count for this classifier, preferred first.

        A prompt change must not silently reclassify everything: older versions' results stay in
        use until the user asks to reclassify (``reclassify: true``), when only the current counts.
        """
        if reclassify:
            return [version]
        older = self.wh.fetchall(
            f"SELECT version FROM {self.t['cb_versions']} WHERE classifier = ? AND version <> ? "
            "AND escalates IS NULL ORDER BY first_seen_at DESC",
            [classifier, version],
        )
        return [version, *[v for (v,) in older]]

    # ------------------------------------------------------------------ gather
    def done_sql(self, version: str, max_attempts: int, per_version: str) -> str:
        """Text hashes with nothing to send: a usable result under an accepted version, or a request
        in flight. ``per_version`` reads a table holding ``per_version_sql(accepted versions)``."""
        retryable = ", ".join(f"'{s}'" for s in RETRYABLE_STATUSES)
        v = version.replace("'", "''")
        return f"""
            SELECT text_hash FROM ({per_version}) r
            WHERE NOT (r.version = '{v}' AND (r.status IN ({retryable}) AND coalesce(r.error_type, '') <> 'invalid_request_error')
                       AND r.attempt < {int(max_attempts)})
              AND NOT (r.version <> '{v}' AND r.status <> 'succeeded')
            UNION ALL
            SELECT text_hash FROM ({self.busy_sql(version)}) b
        """

    def pending_sql(self, rows_sql: str, version: str, per_version: str) -> str:
        """Items to send: the distinct texts of source rows still to classify, each with its attempt.

        ``rows_sql`` yields (text, text_hash) per source row, with ``text`` NULL for every row that
        needs nothing (skipped, or its text in ``done_sql``): the source scan marks them as it reads
        (an anti-join in SQL), so a nightly no-op run is one scan of the source and this groups only
        the new texts. ``per_version`` as in ``done_sql``.
        """
        v = version.replace("'", "''")
        return f"""
            WITH src AS (
                -- Grouped by the text itself (the hash is a function of it): carrying a string
                -- through any_value costs twice as much as hashing it as the group key.
                SELECT text, any_value(text_hash) AS text_hash, count(*) AS n_rows
                FROM ({rows_sql}) s
                WHERE text IS NOT NULL
                GROUP BY text
            )
            SELECT src.text_hash, src.text, src.n_rows, coalesce(res.attempts, 0) + 1 AS attempt,
                   coalesce(res.status IN ('missing', 'invalid_output'), false) AS alone
            FROM src
            LEFT JOIN ({per_version}) res ON res.version = '{v}' AND res.text_hash = src.text_hash
        """

    def per_version_sql(self, versions: Sequence[str] | None = None) -> str:
        """One narrow row per (version, text): the row id of the result that counts (a success if there
        ever was one, else the latest), its status, and every attempt's count and cost.

        Narrow on purpose: the wide result row is fetched by row id only where it is needed, which at a
        million texts is several times cheaper than carrying it through a window or an aggregate.
        """
        res = self.t["cb_results"]
        where = ""
        if versions is not None:
            where = "WHERE version IN (" + ", ".join("'" + v.replace("'", "''") + "'" for v in versions) + ")"
        # One value orders the outcomes (success, then attempt, then time); rid is the engine's row id.
        key = self.wh.outcome_order_sql("status = 'succeeded'", "attempt", "collected_at")
        rowid = self.wh.row_id_sql()
        # Most texts have one outcome per version, which is then the one that counts: only texts with
        # several (retries) go through the aggregate, whose winner's few columns are read by row id
        # (one join, cheaper than four more arg_max). Finding them costs a count per text; the
        # aggregate and the join over every result cost twice that and more. Costs stay NULL only
        # where the model has no prices (collect writes 0 for what was not billed).
        several = self.wh.materialized_cte(
            "several", f"SELECT version, text_hash FROM {res} {where} GROUP BY version, text_hash HAVING count(*) > 1")
        return f"""
            WITH {several}
            SELECT version, text_hash, {rowid} AS rid, status, error_type, attempt, collected_at,
                   CAST(1 AS BIGINT) AS attempts, billed_usd AS attempts_billed_usd,
                   naive_usd AS attempts_naive_usd
            FROM {res} o {where}
            {"AND" if where else "WHERE"} NOT EXISTS (SELECT 1 FROM several m WHERE m.version = o.version AND m.text_hash = o.text_hash)
            UNION ALL
            SELECT g.version, g.text_hash, g.rid, r.status, r.error_type, r.attempt, r.collected_at,
                   g.attempts, g.attempts_billed_usd, g.attempts_naive_usd
            FROM (SELECT version, text_hash, {self.wh.arg_max_sql(rowid, key)} AS rid,
                         count(*) AS attempts, sum(billed_usd) AS attempts_billed_usd,
                         max(naive_usd) AS attempts_naive_usd
                  FROM {res} o
                  WHERE EXISTS (SELECT 1 FROM several m WHERE m.version = o.version AND m.text_hash = o.text_hash)
                  GROUP BY version, text_hash) g
            JOIN {res} r ON {self.wh.row_id_sql("r")} = g.rid
        """

    def unsure_sql(self, version: str, per_version: str, label: str = "unsure") -> str:
        """Texts whose result under ``version`` (in ``per_version``) succeeded with the unsure label:
        the rows escalate_to sends to the stronger model."""
        return f"""
            SELECT p.text_hash FROM ({per_version}) p JOIN {self.t['cb_results']} r ON {self.wh.row_id_sql("r")} = p.rid
            WHERE p.version = {quote_literal(version)} AND p.status = 'succeeded'
              AND {self.wh.list_contains_sql("r.labels", quote_literal(label))}
        """

    def busy_sql(self, version: str) -> str:
        """Texts of this version in a request still submitting or in flight (one row per text).

        An item's state is its request's: items are written once, at the intent. A request counts
        only while its submission is open: a request whose submission has no row (a crash mid-intent)
        or was abandoned before its requests were rolled forward is not busy."""
        in_flight = ", ".join(f"'{s}'" for s in IN_FLIGHT_STATUSES)
        open_subs = ", ".join(f"'{s}'" for s in OPEN_SUBMISSION_STATUSES)
        v = version.replace("'", "''")
        return f"""
            SELECT i.text_hash, any_value(i.custom_id) AS custom_id
            FROM {self.t['cb_request_items']} i JOIN {self.t['cb_requests']} r USING (custom_id)
            WHERE i.version = '{v}' AND r.status IN ({in_flight})
              AND r.submission_key IN (SELECT submission_key FROM {self.t['cb_batches']} WHERE status IN ({open_subs}))
            GROUP BY i.text_hash
        """

    # ------------------------------------------------------------------ submit
    def next_intent_seq(self, classifier: str) -> int:
        return int(self.wh.scalar(f"SELECT count(*) FROM {self.t['cb_batches']} WHERE classifier = ?", [classifier]) or 0)

    def record_intent(self, submission: Submission, requests: dict[str, list], items: dict[str, list]) -> None:
        """Before the create call: every custom_id, every item, then the submission's row (the
        commit point). ``requests`` and ``items`` are columns (name → values)."""
        self.wh.append(self.t["cb_requests"], requests)
        self.wh.append(self.t["cb_request_items"], items)
        checkpoint("intent_before_commit")
        self.wh.append(self.t["cb_batches"], submission.intent())

    def record_intent_sql(self, submission: Submission, requests_select: str, items_select: str,
                          params: Sequence | None = None) -> None:
        """``record_intent`` for a submission the warehouse planned: requests and items come from
        SELECTs (requests: custom_id .. row_chars, status; items: custom_id .. row_chars), so a million
        items never cross into Python."""
        req_cols = ["custom_id", "submission_key", "classifier", "version", "model", "attempt", "item_count",
                    "prefix_tokens", "cached_prefix", "row_chars", "status"]
        item_cols = ["custom_id", "item_id", "version", "text_hash", "attempt", "row_chars"]
        self.wh.append_select(self.t["cb_requests"], req_cols, requests_select, params)
        self.wh.append_select(self.t["cb_request_items"], item_cols, items_select, params)
        checkpoint("intent_before_commit")
        self.wh.append(self.t["cb_batches"], submission.intent())

    def sweep_uncommitted(self, classifier: str) -> int:
        """Requests and items of intents that never got their ``cb_batches`` row (a crash between
        the appends of ``record_intent``): nothing was sent for them, readers ignore them; removed
        here, items first (found through their requests), so a repeat after a crash finishes the job.
        Call under the classifier's lock. Returns the number of submissions swept."""
        keys = [k for (k,) in self.wh.fetchall(
            f"""SELECT DISTINCT submission_key FROM {self.t['cb_requests']} r
                WHERE classifier = ? AND NOT EXISTS (SELECT 1 FROM {self.t['cb_batches']} b
                                                    WHERE b.submission_key = r.submission_key)""", [classifier])]
        for key in keys:
            self.wh.delete(self.t["cb_request_items"], self.wh.starts_with_sql("custom_id", f"{key}-"))
            self.wh.delete(self.t["cb_requests"], "submission_key = ?", [key])
        return len(keys)

    def roll_forward(self, classifier: str) -> None:
        """Requests still ``submitting`` whose submission moved on (a crash after the commit point of
        ``record_submitted`` or ``record_abandoned``): bring them to their submission's state. One
        write per kind; a no-op when nothing lags (the usual case: one small query)."""
        batches, requests = self.t["cb_batches"], self.t["cb_requests"]
        lagging = f"""SELECT b.submission_key, b.batch_id, b.status FROM {batches} b
                      WHERE b.classifier = ? AND b.status <> 'submitting' AND EXISTS (
                          SELECT 1 FROM {requests} r WHERE r.submission_key = b.submission_key
                          AND r.status = 'submitting')"""
        for key, batch_id, status in self.wh.fetchall(lagging, [classifier]):
            if status in OPEN_SUBMISSION_STATUSES:
                self._requests_in_flight(key, batch_id)
            elif status == "abandoned":
                self._requests_abandoned(key)

    def _requests_in_flight(self, submission_key: str, batch_id: str) -> None:
        self.wh.update(self.t["cb_requests"], {"batch_id": batch_id, "status": "in_flight"},
                       "submission_key = ? AND status = 'submitting'", [submission_key])

    def _requests_abandoned(self, submission_key: str) -> None:
        # Only requests never answered: a real-time chunk's billed requests keep their status and cost.
        self.wh.update(self.t["cb_requests"], {"status": "abandoned"},
                       "submission_key = ? AND status IN ('submitting', 'in_flight')", [submission_key])

    def record_submitted(self, submission_key: str, batch: dict) -> None:
        """After the create call answered: the batch id on the submission (the commit point), then
        its requests are in flight (rolled forward by the next run if this one dies in between)."""
        self.wh.update(
            self.t["cb_batches"],
            {"batch_id": batch["id"], "status": batch["processing_status"], "created_at": batch["created_at"],
             "expires_at": batch["expires_at"]},
            "submission_key = ?", [submission_key])
        checkpoint("submitted_before_requests")
        self._requests_in_flight(submission_key, batch["id"])

    def record_abandoned(self, submission_key: str, reason: str) -> None:
        """The create call never reached the API: the items go back to pending, no attempt used.
        The submission's status is the commit point (``busy_sql`` reads it); requests follow."""
        self.wh.update(self.t["cb_batches"], {"status": "abandoned", "error": reason},
                       "submission_key = ?", [submission_key])
        self._requests_abandoned(submission_key)

    def record_create_failed(self, submission_key: str, error_type: str, message: str, model: str, classifier: str) -> None:
        """The API refused the create call: every item gets an errored result naming the reason.

        Requests, then results (appended once: guarded by the submission's custom_ids), then the
        submission (the commit point). Killed before the last, the submission is still
        ``submitting``: the next run finds no batch for it and abandons it; its items are pending
        again (an errored result with attempts left is retried), nothing was billed."""
        self.result_writes += 1
        self.wh.update(
            self.t["cb_requests"],
            {"status": "errored", "error_type": error_type, "error_message": message,
             "collected_at": Sql(self.wh.now_sql())},
            "submission_key = ?", [submission_key])
        mine = self.wh.starts_with_sql("custom_id", f"{submission_key}-")
        self.wh.append_select(
            self.t["cb_results"],
            ["version", "text_hash", "status", "labels", "raw_answer", "error_type", "error_message", "custom_id",
             "batch_id", "attempt", "model", "classifier", "collected_at", "billed_usd", "naive_usd"],
            f"""SELECT i.version, i.text_hash, 'errored', NULL, NULL, ?, ?, i.custom_id, NULL, i.attempt, ?, ?,
                       {self.wh.now_sql()}, 0, 0
                FROM {self.t['cb_request_items']} i
                WHERE i.custom_id IN (SELECT custom_id FROM {self.t['cb_requests']} WHERE submission_key = ?)
                  AND NOT EXISTS (SELECT 1 FROM {self.t['cb_results']} WHERE {mine})""",
            [error_type, message, model, classifier, submission_key])
        self.wh.update(self.t["cb_batches"], {"status": "failed", "error": f"{error_type}: {message}"},
                       "submission_key = ?", [submission_key])

    # ------------------------------------------------------------------ collect
    def version_settings(self, version: str) -> dict | None:
        """What ``config.describe`` recorded for a classifier version, or None."""
        raw = self.wh.scalar(f"SELECT settings_json FROM {self.t['cb_versions']} WHERE version = ? LIMIT 1", [version])
        return json.loads(raw) if raw else None

    def open_submissions(self, classifier: str) -> list[Submission]:
        return [Submission.from_row(row) for row in self.wh.fetch_dicts(
            f"""SELECT * FROM {self.t['cb_batches']}
                WHERE classifier = ? AND mode = 'batch' AND status IN ('submitting', 'in_progress', 'canceling', 'ended')
                ORDER BY intent_at""",
            [classifier],
        )]

    def known_batch_ids(self) -> set[str]:
        return {r[0] for r in self.wh.fetchall(f"SELECT batch_id FROM {self.t['cb_batches']} WHERE batch_id IS NOT NULL")}

    def update_batch_status(self, submission_key: str, batch: dict) -> None:
        counts = batch.get("request_counts") or {}
        self.wh.update(
            self.t["cb_batches"],
            {"status": batch["processing_status"], "ended_at": batch.get("ended_at"),
             **{str(k): counts.get(k) for k in (Outcome.SUCCEEDED, Outcome.ERRORED, Outcome.CANCELED, Outcome.EXPIRED)}},
            "submission_key = ?", [submission_key])

    # ------------------------------------------------------------------ runs
    def preflight_passed(self, classifier: str, version: str, model: str, api_version: str, sdk_version: str) -> bool:
        return bool(self.wh.scalar(
            f"""SELECT count(*) FROM {self.t['cb_preflights']} WHERE classifier = ? AND version = ? AND model = ?
                AND api_version = ? AND sdk_version = ? AND status = 'passed'""",
            [classifier, version, model, api_version, sdk_version]))

    def record_preflight(self, row: dict) -> None:
        cols = ("classifier", "version", "model", "api_version", "sdk_version", "status", "custom_id", "message")
        self.wh.append_select(self.t["cb_preflights"], [*cols, "checked_at"],
                              f"SELECT {', '.join('?' * len(cols))}, {self.wh.now_sql()}", [row.get(c) for c in cols])

    def refused_submission(self, submission_key: str) -> tuple[int, str] | None:
        """(requests, the first message) when every request of a submission came back
        invalid_request_error: the API refused the batch whole."""
        n, refused, message = self.wh.fetchall(
            f"""SELECT count(*), count(*) FILTER (WHERE error_type = 'invalid_request_error'),
                       min(error_message) FILTER (WHERE error_type = 'invalid_request_error')
                FROM {self.t['cb_requests']} WHERE submission_key = ?""", [submission_key])[0]
        return (int(n), str(message)) if n and n == refused else None

    def record_run(self, run: dict) -> None:
        self.wh.append(self.t["cb_runs"], {k: [v] for k, v in run.items()})

    def spent_today_usd(self, classifier: str) -> float:
        """Billed so far today plus what is still in flight (estimated at submit time)."""
        return float(
            self.wh.scalar(
                f"""SELECT coalesce(sum(coalesce(estimated_usd, 0)), 0) FROM {self.t['cb_runs']}
                    WHERE classifier = ? AND NOT dry_run AND started_at >= current_date""",
                [classifier],
            )
            or 0.0
        )

    def in_flight_requests(self) -> int:
        """Requests waiting in the API's batch processing queue (an organisation-wide cap, so every
        classifier counts; real-time calls never queue)."""
        return int(
            self.wh.scalar(
                f"""SELECT count(*) FROM {self.t['cb_requests']} r JOIN {self.t['cb_batches']} b USING (submission_key)
                    WHERE r.status IN ('submitting', 'in_flight') AND b.mode = 'batch'
                      AND b.status IN ({", ".join(f"'{s}'" for s in OPEN_SUBMISSION_STATUSES)})"""
            )
            or 0
        )
