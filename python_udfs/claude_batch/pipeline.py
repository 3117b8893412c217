"""One run of a classifier inside a dbt Python model: collect → gather → submit → return the table.

The steps, in order, each safe to interrupt:
1. reconcile submissions a crashed run left ``submitting`` (find their batch or give them up);
2. collect: refresh every batch in flight; for each that ended, download and write its results;
3. gather: the source scan, an anti-join against results and in-flight items (``StateStore.done_sql``),
   and the distinct texts left (``StateStore.pending_sql``);
4. submit: pack, price, cut to the budget and the queue cap, record the intent, create the batches,
   record their ids (or answer in real time for small increments);
5. return the rows whose classification changed, so the incremental model holds every result so far.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anthropic

from . import batches, bodies, budget, catalog, collect, config as config_mod, cost, dbt_context, lifecycle, locks, noop, output, packing, prompts, realtime, submissions, tmpfiles
from .errors import ApiContractError
from .logs import info, warn
from . import source as source_rows
from . import client as client_mod
from .client import make_client
from ._crashpoints import checkpoint
from .config import ClassifierConfig
from .runs import RunReport
from .state import StateStore, Submission
from .statuses import BatchStatus
from .warehouse import Warehouse, quote_literal as _lit

ROWS = "cb_tmp_rows"  # this run's source rows (temp table): keys, text (rows to send, until gathered), text_hash, truncated, skip_reason
PENDING = "cb_tmp_pending"  # this run's pending items (temp table): rn, text_hash, text, n_rows, attempt, alone, chars
PER_VERSION = "cb_tmp_per_version"  # this run's StateStore.per_version_sql, materialised by gather
PENDING_ESC = "cb_tmp_pending_esc"  # escalate_to: the unsure texts to send to the stronger model (as PENDING)
ESC_TODO = "cb_tmp_esc_todo"  # escalate_to: text hashes answered unsure with no usable escalation answer yet
OUTPUT = "cb_tmp_output"  # the output of a run that may be a no-op, materialised to count it (noop.py)


class Pipeline:
    """Holds one run's pieces together; ``classify`` below is the public entry point."""

    def __init__(self, cfg: ClassifierConfig, wh: Warehouse, source_sql: str, client: Any | None = None):
        self.cfg = cfg
        self.wh = wh
        self.store = StateStore(wh)
        self.source_sql = source_sql
        self._client = client
        self.run = RunReport(
            run_id=uuid.uuid4().hex[:16], classifier=cfg.name, version=cfg.version, mode=cfg.mode, dry_run=cfg.dry_run
        )
        self.owner = locks.owner(self.run.run_id)
        self._per_version_at: int | None = None  # store.result_writes when PER_VERSION was made
        # escalate_to: the same prompt on the stronger model, its own version, in the same state tables
        self.escalation = config_mod.escalation_config(cfg)
        self.escalation_pending = 0
        self.noop_lines: list[tuple[str, str]] = []  # what a no-op run logs, replayed by the next one (noop.py)

    @property
    def client(self):
        if self._client is None:
            self._client = make_client(api_version=self.cfg.api_version)
        return self._client

    @property
    def given_client(self) -> Any | None:
        """The client this run has so far (the caller's, sync or async, or one made on first use), without making one."""
        return self._client

    def _spec_of(self, version: str) -> prompts.PromptSpec:
        """The prompt spec a submission was made with (to check its labels), from the versions table."""
        if version == self.cfg.version:
            return self.cfg.spec
        settings = self.store.version_settings(version)
        return config_mod.recorded_spec(settings) if settings else self.cfg.spec

    # ------------------------------------------------------------------ steps
    def prepare(self) -> None:
        source_rows.check_columns(self.wh, self.source_sql, self.cfg)
        self.store.ensure()
        self.store.record_version(self.cfg.name, self.cfg.version, self.cfg.spec.model, config_mod.describe(self.cfg))
        if self.escalation is not None:
            self.store.record_version(self.cfg.name, self.escalation.version, self.escalation.spec.model,
                                      config_mod.describe(self.escalation), escalates=self.cfg.version)

    def scan_source(self, done_sql: str) -> None:
        """Render and hash the source once per run (a temp table): gather and the output both read it.

        A row keeps its text only while it is to be sent (``done_sql``: the texts that need nothing),
        so the scan is the anti-join too, and a nightly run copies no text at all. Done after
        collecting, not before: a big collect then has the warehouse's memory to itself.
        """
        keys = source_rows.key_list(self.wh, self.cfg.key_columns, "r")
        # Rows seen by earlier runs (same key and raw text) are not hashed again (source.scan_sql): on
        # long texts the md5 text key was most of a nightly no-op run.
        prints, scan = self.store.t["cb_source_prints"], source_rows.scan_signature(self.wh, self.cfg)
        where = f"classifier = {_lit(self.cfg.name)} AND scan = {_lit(scan)}"
        self.wh.create_temp_table(ROWS, f"""
            SELECT {keys},
                   CASE WHEN r.skip_reason IS NULL
                             AND r.text_hash NOT IN (SELECT text_hash FROM ({done_sql}) d WHERE text_hash IS NOT NULL)
                        THEN r.text END AS text,
                   r.text_hash, r.truncated, r.skip_reason, r.fp, r.known
            FROM ({source_rows.scan_sql(self.wh, self.source_sql, self.cfg,
                                        f"SELECT fp, text_hash, truncated, skip_reason FROM {prints} WHERE {where}")}) r""")
        keys = source_rows.key_list(self.wh, self.cfg.key_columns)
        total, null_keys, dup_keys, done, fresh = self.wh.fetchall(
            "SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE nk), 0), count(*) FILTER (WHERE NOT nk AND n > 1), "
            "coalesce(sum(done), 0), coalesce(sum(fresh), 0) "
            f"FROM (SELECT {keys}, skip_reason IS NOT DISTINCT FROM 'null_key' AS nk, count(*) AS n, "
            "count(*) FILTER (WHERE text IS NULL AND skip_reason IS NULL) AS done, "
            "count(*) FILTER (WHERE NOT known) AS fresh "
            f"FROM {ROWS} GROUP BY {keys}, skip_reason IS NOT DISTINCT FROM 'null_key') k"
        )[0]
        self.run.source_rows = int(total)
        self._done_rows = int(done)  # rows whose text has a stored result or is in flight (the log says which)
        if fresh:
            # New or changed rows: store their fingerprints, and drop those no source row has any more
            # (changed texts, deleted rows, another scan). One fingerprint, one answer: a fingerprint
            # two different texts share (a 64-bit collision) is not stored, so those rows stay exact.
            # One write (derived data: a crash costs one hashing pass, nothing else).
            self.wh.replace_where(
                prints,
                f"classifier = {_lit(self.cfg.name)} AND (scan <> {_lit(scan)} OR fp NOT IN (SELECT fp FROM {ROWS}))",
                f"""
                    SELECT {_lit(self.cfg.name)}, {_lit(scan)}, fp, min(text_hash), any_value(truncated),
                           min(skip_reason)
                    FROM {ROWS} WHERE NOT known
                    GROUP BY fp
                    -- one distinct non-null value at most, as min = max (count(DISTINCT) costs 3x at 10M rows)
                    HAVING min(text_hash) IS NOT DISTINCT FROM max(text_hash)
                       AND min(skip_reason) IS NOT DISTINCT FROM max(skip_reason)""")
        for count, note in (
            (null_keys, f"{null_keys} source row(s) have a null key: not sent, not in the output"),
            (dup_keys, f"{dup_keys} key(s) appear on more than one source row: every such row is classified "
                       "and output, so the key is not unique in the model's table"),
        ):
            if count:
                warn(note)
                self.noop_lines.append(("warn", note))
                self.run.notes.append(note)

    def lock(self) -> None:
        table = self.store.t["cb_locks"]
        row = self.wh.fetchall(f"SELECT owner FROM {table} WHERE classifier = ?", [self.cfg.name])
        self.wh.acquire_lock(table, self.cfg.name, self.owner, locks.stale_after(row[0][0] if row else None))

    def unlock(self) -> None:
        self.wh.release_lock(self.store.t["cb_locks"], self.cfg.name, self.owner)

    def reconcile(self) -> None:
        """Submissions left 'submitting' by a crash: adopt the batch the API has, or give them up."""
        # Crash leftovers first: intents without their submission row, requests behind their submission.
        if self.store.sweep_uncommitted(self.cfg.name):
            info("removed the requests of an intent a crash cut short before it was recorded (nothing was sent)")
        self.store.roll_forward(self.cfg.name)
        realtime.abandon_leftovers(self.store, self.cfg.name)  # no server-side state to adopt
        for sub in self.store.open_submissions(self.cfg.name):
            if sub.status != BatchStatus.SUBMITTING:
                continue
            intent_at = sub.intent_at.replace(tzinfo=timezone.utc)
            prefix = sub.submission_key
            exclude = self.store.known_batch_ids()
            candidates = batches.find_candidates(
                self.client, intent_at=intent_at, request_count=int(sub.request_count), exclude=exclude
            )
            # Only a batch whose custom_ids carry our submission key is ours. One still processing
            # cannot be checked yet (no results): it may be another client's batch of the same size,
            # so wait for it to end rather than adopt it (its results would not match) or resubmit.
            mine, unverified = None, []
            for cand in candidates:
                if cand["processing_status"] != BatchStatus.ENDED:
                    unverified.append(cand)
                elif cand.get("results_url"):
                    first = batches.first_custom_id(self.client, cand["id"])
                    if first and first.startswith(prefix):
                        mine = cand
                        break
            if mine is not None:
                info(f"reconciled submission {prefix}: found batch {mine['id']} created before a crash")
                self.store.record_submitted(prefix, mine)
                continue
            age = (datetime.now(timezone.utc) - intent_at).total_seconds()
            # No batch of this size since the intent (less the clock skew): the create never produced
            # one, so waiting out the grace would only delay the rows. We hold the classifier's lock, so
            # the run that recorded the intent is over. The grace still covers candidates that were
            # checked and found foreign; an unverified one always waits (never pay twice).
            if not unverified and (not candidates or age >= self.cfg.reconcile_grace_seconds):
                self.store.record_abandoned(prefix, "no batch found for this intent: the create call never reached the API")
                info(f"submission {prefix} never reached the API; its {sub.item_count} text(s) are pending again")
            else:
                warn(
                    f"submission {prefix} is unresolved ({len(unverified)} candidate batch(es) still processing, "
                    f"intent {age:.0f}s old); its rows wait for a later run rather than risk paying twice"
                )

    def collect(self) -> None:
        subs = [s for s in self.store.open_submissions(self.cfg.name) if s.status != BatchStatus.SUBMITTING]
        if not subs:
            return
        started = time.monotonic()
        running = 0
        rejected: list[str] = []
        for sub in subs:
            self._cancel_if_requested(sub)
            spec = self._spec_of(sub.version)
            try:
                got = collect.collect_batch(self.store, self.client, sub, spec, classifier=self.cfg.name)
            except (anthropic.AuthenticationError, anthropic.PermissionDeniedError):
                raise  # a wrong key is not one batch's problem: fail the run, naming it
            except (batches.IncompleteResultsError, anthropic.APIError) as exc:
                # One batch we cannot read now must not block the others or new submissions; it stays
                # 'ended' (or in flight) and the next run tries again: results stay 29 days.
                warn(f"could not collect batch {sub.batch_id} this run ({type(exc).__name__}: {exc}); "
                     "the next run tries again")
                running += 1
                continue
            if got is None:
                running += 1
                continue
            self.run.collected_requests += got.requests
            self.run.collected_items += got.texts
            self.run.billed_usd += got.billed_usd or 0.0
            self.run.naive_usd += got.naive_usd or 0.0
            info(f"collected batch {sub.batch_id}: {got.texts} text(s), billed ${got.billed_usd or 0.0:.4f}")
            refused = self.store.refused_submission(sub.submission_key)
            if refused is not None:
                rejected.append(f"batch {sub.batch_id}: all {refused[0]} request(s) came back "
                                f"invalid_request_error: {refused[1]}")
        elapsed = time.monotonic() - started
        rate = self.run.collected_items / elapsed if elapsed > 0 else 0.0
        info(
            f"batches: {len(subs) - running} ended and collected, {running} still processing; "
            f"{self.run.collected_items} text(s) collected at {rate:,.0f}/s"
        )
        if rejected:
            # Written and accounted above (nothing is lost, those rows are not retried); but a batch the
            # API refused whole means our requests disagree with the API: stop loudly, do not send more.
            self.finish()
            raise ApiContractError(
                "the API refused every request of a batch, so the classifier's requests disagree with the API "
                "(a model, parameter or API-version change?); nothing more is sent until it is fixed. "
                + "; ".join(rejected))

    def _cancel_if_requested(self, sub: Submission) -> None:
        if sub.error == "cancel requested" and sub.status in (BatchStatus.IN_PROGRESS,):
            try:
                batches.cancel(self.client, sub.batch_id)
                info(f"canceled batch {sub.batch_id} as requested")
            except anthropic.APIStatusError as exc:
                warn(f"cancel of {sub.batch_id} failed: {exc.status_code} {exc.message}")

    def gather(self) -> int:
        """Materialise the pending items (anti-join) in a temp table; returns how many there are.

        A temp table, not a Python list: a million pending texts are streamed out of it in chunks,
        so memory stays bounded whatever the backlog.
        """
        accepted = self.store.accepted_versions(self.cfg.name, self.cfg.version, self.cfg.reclassify)
        # The per-(version, text) summary of the results, once per run: the output reuses it unless
        # results are written after this point (real-time answers, a refused create, a wait loop).
        self.wh.create_temp_table(PER_VERSION, self.store.per_version_sql(accepted))
        self._per_version_at = self.store.result_writes
        per_version = f"SELECT * FROM {PER_VERSION}"
        done = self.store.done_sql(self.cfg.version, self.cfg.max_attempts, per_version)
        rows = f"SELECT * FROM {ROWS}"
        esc = self.escalation
        if esc is not None:
            # Texts this version answered unsure and the stronger model has not answered usably (nor
            # has in flight): their text is read by the scan too, and they are sent as esc's items.
            per_esc = self.store.per_version_sql([esc.version])
            self.wh.create_temp_table(ESC_TODO, f"""
                SELECT DISTINCT text_hash FROM ({self.store.unsure_sql(self.cfg.version, per_version)}) u
                WHERE text_hash NOT IN (SELECT text_hash FROM ({self.store.done_sql(esc.version, esc.max_attempts, per_esc)}) d
                                        WHERE text_hash IS NOT NULL)""")
            done = f"SELECT text_hash FROM ({done}) d WHERE text_hash NOT IN (SELECT text_hash FROM {ESC_TODO})"
            rows = f"SELECT * FROM {ROWS} WHERE text_hash NOT IN (SELECT text_hash FROM {ESC_TODO})"
        self.scan_source(done)
        sql = self.store.pending_sql(rows, self.cfg.version, per_version)
        # max_rows_per_run keeps the first rn (a filter: DuckDB 2.0.1 drops a LIMIT above this window
        # when the results side of the join is empty, e.g. on a first run, so the cap was ignored).
        cap = f" WHERE rn <= {int(self.cfg.max_rows_per_run)}" if self.cfg.max_rows_per_run is not None else ""
        limit = ""
        if not self.wh.scalar(f"SELECT count(*) FROM (SELECT 1 FROM {ROWS} WHERE text IS NOT NULL LIMIT 1) x"):
            limit = " LIMIT 0"  # the usual nightly run: nothing to send, no lookup of attempts to build
        # rn numbers the items densely (packing is arithmetic on it). No ORDER BY: sorting a million
        # texts would cost more than the rest of the gather.
        self.wh.create_temp_table(PENDING, f"""
            SELECT * FROM (SELECT {self.wh.row_number_sql()} AS rn, *, length(text) AS chars FROM ({sql}) q{limit}) w{cap}""")
        self.run.pending_texts = int(self.wh.scalar(f"SELECT count(*) FROM {PENDING}"))
        if esc is not None:
            sql = self.store.pending_sql(f"SELECT * FROM {ROWS} WHERE text_hash IN (SELECT text_hash FROM {ESC_TODO})",
                                         esc.version, per_esc)
            self.wh.create_temp_table(PENDING_ESC, f"""
                SELECT * FROM (SELECT {self.wh.row_number_sql()} AS rn, *, length(text) AS chars FROM ({sql}) q{limit}) w{cap}""")
            self.escalation_pending = int(self.wh.scalar(f"SELECT count(*) FROM {PENDING_ESC}"))
            self.run.pending_texts += self.escalation_pending
        # The pending texts are copied out; the output needs the source rows' keys and hashes only.
        # Dropping the texts (a metadata change) gives the warehouse's memory back to what follows.
        self.wh.drop_column(ROWS, "text")
        return self.run.pending_texts

    def submit(self) -> None:
        pending = self.run.pending_texts - self.escalation_pending
        self._report_older_versions()
        stored = self._stored_rows_note()
        if not pending and not self.escalation_pending:
            line = f"nothing new to classify: {stored or 'no source row to classify'}"
            info(line)
            self.noop_lines.append(("info", line))
            return
        if pending and (not self.cfg.auto_pack_size or self._resolve_auto_pack_size()):
            self._send(PENDING, pending)
        self.wh.drop_temp(PENDING)
        if self.escalation_pending:
            info(f"escalate_to: {self.escalation_pending} text(s) answered unsure go to {self.escalation.spec.model} "
                 f"(version {self.escalation.version})")
            main, self.cfg = self.cfg, self.escalation  # the same steps, for the stronger model's version
            try:
                self._send(PENDING_ESC, self.escalation_pending)
            finally:
                self.cfg = main
            self.wh.drop_temp(PENDING_ESC)
        if stored:  # texts and requests are in the estimate line and the run's summary: not said again here
            info(f"not sent, other rows: {stored}")

    def _send(self, table: str, pending: int) -> None:
        """Pack, price, cut to the budget and the queue cap, and send the items of ``table`` under
        ``self.cfg`` (the classifier, or its escalation)."""
        mode = self.cfg.mode
        if mode == "auto":
            mode = "realtime" if pending < self.cfg.realtime_threshold else "batch"
        self.run.mode = mode
        batch = mode == "batch"
        prefix = cost.prefix_tokens(prompts.build_params(self.cfg.spec, [(1, "")], cache=False))
        n_requests = packing.pack(self.wh, table, pack_size=self.cfg.pack_size,
                                  max_pack_chars=self.cfg.max_pack_chars)
        # Priced on the requests this run really makes (packing also cuts at max_pack_chars), after packing.
        plan = cost.cache_plan(self.cfg.spec.model, prefix, expected_requests=n_requests, batch=batch,
                               policy=self.cfg.cache, ttl=self.cfg.spec.cache_ttl)
        if plan.message:
            warn(plan.message)
        preflight = batch and self._needs_preflight()
        guard = budget.Guard(self, prefix, plan.mark, batch=batch, preflight=preflight)
        shapes = packing.shapes(self.wh)
        admitted = guard.admit(shapes)  # requests 1..admitted go
        if self.cfg.dry_run or not admitted:
            pass
        elif mode == "realtime":
            planned = packing.fetch_planned(self.wh, 1, admitted, self.cfg.spec, plan.mark)
            realtime.submit(self, planned, prefix, plan.mark)
        else:
            first = 1
            if preflight:
                planned = packing.fetch_planned(self.wh, 1, 1, self.cfg.spec, plan.mark)
                realtime.preflight(self, planned[0], prefix, plan.mark)  # raises ApiContractError if refused
                first = 2
            if first <= admitted:
                self._submit_batches(shapes, admitted, prefix, plan.mark, first=first)
        guard.report()
        # The plan's tables hold every pending text (a million is hundreds of MB): free them now, not
        # when dbt closes the connection, for the collect, the output and the user's other models.
        packing.drop_plan(self.wh)

    def _resolve_auto_pack_size(self) -> bool:
        """``pack_size: auto``: the pack size this version's calibration supports (calibrate.auto_pack_size),
        within what the budget guard leaves this run; False while there is none yet (the rows wait)."""
        from . import calibrate

        if self.cfg.dry_run:
            # Nothing is sent, so nothing is calibrated: a dry run estimates at a collected calibration's
            # choice if there is one, else at the largest candidate (an upper bound on nothing; said).
            size, _ = calibrate.auto_pack_size(self.cfg, self.wh, self.source_sql, None, max_usd=0.0, submit=False)
            size = size or max(self.cfg.calibration_pack_sizes)
            self.cfg = dataclasses.replace(self.cfg, pack_size=size)
            return True
        limit = budget.Guard.run_limit(self)
        caps = [c for c in (limit, self.cfg.calibration_max_usd) if c is not None]
        size, spent = calibrate.auto_pack_size(self.cfg, self.wh, self.source_sql, self.client,
                                               max_usd=min(caps) if caps else None)
        self.run.estimated_usd += spent  # the budget guard and max_usd_per_day count the calibration
        if size is None:
            note = f"pack_size auto: {self.run.pending_texts} text(s) wait for the calibration of version {self.cfg.version}"
            info(note)
            self.run.notes.append(note)
            return False
        self.run.notes.append(f"pack_size auto: {size}")
        self.cfg = dataclasses.replace(self.cfg, pack_size=size)
        return True

    def _stored_rows_note(self) -> str:
        """How many source rows need nothing sent: answered from stored results (earlier runs, identical
        texts, another classifier with the same version), or in flight."""
        done = getattr(self, "_done_rows", 0)
        busy = 0
        if done and self.store.in_flight_requests():
            busy = int(self.wh.scalar(
                f"SELECT count(*) FROM {ROWS} s WHERE s.skip_reason IS NULL AND s.text_hash IN "
                f"(SELECT text_hash FROM ({self.store.busy_sql(self.cfg.version)}) b)"))
        if not done:
            return ""
        return f"{done - busy:,} row(s) answered from stored results" + (f", {busy:,} in flight" if busy else "")

    def _report_older_versions(self) -> None:
        """After a prompt, model or label change without reclassify, rows keep their older results: say
        how many, and how to re-label them (else nothing tells the user their table mixes versions)."""
        if self.cfg.reclassify or len(self.store.accepted_versions(self.cfg.name, self.cfg.version, False)) < 2:
            return
        v = _lit(self.cfg.version)
        older = int(self.wh.scalar(f"""
            SELECT count(*) FROM {ROWS} s
            WHERE s.skip_reason IS NULL
              AND s.text_hash IN (SELECT text_hash FROM {PER_VERSION} WHERE version <> {v} AND status = 'succeeded')
              AND s.text_hash NOT IN (SELECT text_hash FROM {PER_VERSION} WHERE version = {v} AND status = 'succeeded')"""))
        if older:
            line = (f"{older:,} row(s) keep the result of an older classifier version (the prompt, model or labels "
                    f"changed since; current version {self.cfg.version}). To re-label them: dbt build --vars "
                    "'{claude_reclassify: true}' (or reclassify: true in the model's claude settings)")
            info(line)
            self.noop_lines.append(("info", line))

    def _needs_preflight(self) -> bool:
        """Before the first batch of a version, and again when the SDK, the API version or the model
        changed since the last preflight that passed (or always, or never, as configured)."""
        if self.cfg.preflight != "auto":
            return self.cfg.preflight == "always"
        return not self.store.preflight_passed(self.cfg.name, self.cfg.version, self.cfg.spec.model,
                                               self.api_version, anthropic.__version__)

    @property
    def api_version(self) -> str:
        """The anthropic-version this run sends (without making a client: a dry run needs no key)."""
        if self._client is not None:
            return client_mod.sent_api_version(self._client)
        return self.cfg.api_version or catalog.DEFAULT_API_VERSION

    def _submit_batches(self, shapes: packing.RequestShapes, admitted: int, prefix: int, cached: bool,
                        *, first: int = 1) -> None:
        """Cut requests ``first``..``admitted`` into batches at the count and byte limits; several creates in flight.

        Each batch's intent is recorded before its create call, and its id right after the answer.
        Bodies are rendered by the warehouse and streamed to the API (``bodies.py``).
        """
        encoder = prompts.RequestEncoder(self.cfg.spec, cache=cached)
        scratch = tmpfiles.temp_dir("bodies")  # named after this process: a run after a kill -9 removes it
        pool = None
        try:
            rows = bodies.render(self.wh, encoder, Path(scratch.name) / "rows")
            ranges, oversized = batches.split_ranges(
                list(zip(range(first, admitted + 1), rows.sizes[first - 1:admitted])),
                max_count=self.cfg.max_requests_per_batch, max_bytes=self.cfg.max_batch_bytes,
            )
            for req_no, size in oversized:
                warn(f"request {req_no} is {size} bytes, over max_batch_bytes ({self.cfg.max_batch_bytes}); "
                     "its text(s) stay pending: lower pack_size or max_pack_chars")
            seq = self.store.next_intent_seq(self.cfg.name)
            started = time.monotonic()
            pending_total = int(shapes.n_items[first - 1:admitted].sum())
            before = self.run.submitted_texts  # the preflight's texts were counted already: not these batches'
            workers = max(1, self.cfg.parallel_creates)
            pool = ThreadPoolExecutor(max_workers=workers)
            in_flight: list = []
            pacer = budget.Pacer(self.cfg.batch_rpm)
            for first, last, _ in ranges:
                sub_key = packing.submission_key_sql(self.wh, self.cfg.version, seq, first, last)
                seq += 1
                body = bodies.BatchBody(encoder, rows, first, last, sub_key)
                n_req = last - first + 1
                n_items = submissions.record_intent_sql(self, sub_key, first, last, body.size, prefix, cached)
                checkpoint("after_intent")
                while len(in_flight) >= workers:
                    self._finish_create(*in_flight.pop(0))
                pacer.wait()
                in_flight.append((sub_key, n_req, pool.submit(batches.create_raw, self.client, body)))
                self.run.submitted_requests += n_req
                self.run.submitted_texts += n_items
                elapsed = time.monotonic() - started
                done = self.run.submitted_texts - before
                rate = done / elapsed if elapsed > 0 else 0.0
                left = (pending_total - done) / rate if rate > 0 else 0.0
                info(f"submitting: {done:,}/{pending_total:,} text(s), {rate:,.0f}/s, ~{left:,.0f}s left")
            while in_flight:
                self._finish_create(*in_flight.pop(0))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            scratch.cleanup()

    def _finish_create(self, sub_key: str, n_requests: int, future) -> None:
        """Record what the create call answered, on this thread (one DuckDB connection)."""
        try:
            batch = future.result()
        except anthropic.APIStatusError as error:
            if error.status_code in (400, 401, 403, 404, 413):
                body = getattr(error, "body", None) or {}
                inner = body.get("error", {}) if isinstance(body, dict) else {}
                etype = inner.get("type", f"http_{error.status_code}")
                self.store.record_create_failed(sub_key, etype, inner.get("message", str(error)),
                                                self.cfg.spec.model, self.cfg.name)
                warn(f"the API refused batch {sub_key}: {error.status_code} {etype}: {inner.get('message')}")
            else:
                warn(f"create of batch {sub_key} failed after retries ({error.status_code}); the next run reconciles it")
            return
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as error:
            warn(f"create of batch {sub_key} did not get an answer ({error}); the next run reconciles it")
            return
        checkpoint("after_create")
        self.store.record_submitted(sub_key, batch)
        self.run.submitted_batches += 1
        checkpoint("after_submitted")
        info(f"submitted batch {batch['id']} ({n_requests} request(s))")

    def output_sql(self, this_sql: str | None) -> str:
        """Every source row with its current classification (or why it has none); with ``this_sql``
        (an incremental run), only the rows that changed since that table was written (``output.py``).
        """
        fresh = self._per_version_at == self.store.result_writes  # no result written since gather
        per_version = (f"SELECT * FROM {PER_VERSION}" if fresh else self.store.per_version_sql(
            self.store.accepted_versions(self.cfg.name, self.cfg.version, self.cfg.reclassify)))
        return output.output_sql(cfg=self.cfg, wh=self.wh, store=self.store, rows_table=ROWS, per_version=per_version,
                                 source_sql=self.source_sql, this_sql=this_sql, warn=warn, escalation=self.escalation)

    # ------------------------------------------------------------------ no-op runs (noop.py)
    def _cheap_signature(self, this_sql: str) -> str:
        """Settings, state and the table's size: everything but the source, which costs a read of every text."""
        from . import output

        stable = output.output_sql(  # the output query as text, with the state summary in its stable form
            cfg=self.cfg, wh=self.wh, store=self.store, rows_table=ROWS, source_sql=self.source_sql, this_sql=this_sql,
            per_version=self.store.per_version_sql(
                self.store.accepted_versions(self.cfg.name, self.cfg.version, self.cfg.reclassify)))
        return noop.signature(settings=noop.settings_signature(self.cfg, self.wh, stable),
                              state=noop.state_signature(self.wh, self.store), source=(),
                              table_rows=noop.table_rows(self.wh, this_sql))

    def unchanged(self, this_sql: str | None) -> bool:
        """True when nothing changed since the last run that verified the table (noop.py): the run then
        logs what that run logged and returns no rows, without scanning, gathering or comparing."""
        if not noop.eligible(self.cfg, this_sql):
            return False
        mark = noop.latest_mark(self.wh, self.store, self.cfg.name, this_sql)
        if mark is None or mark["signature"] != self._cheap_signature(this_sql):
            return False
        rows, fp_sum = noop.source_signature(self.wh, self.source_sql, self.cfg)
        if f"{rows}:{fp_sum}" != mark["source"]:
            return False
        for level, line in json.loads(mark["lines"] or "[]"):
            (warn if level == "warn" else info)(line)
        self.run.source_rows = int(rows)
        self.run.notes.append(f"no change since run {mark['run_id']}: source, state and settings as then")
        return True

    def may_be_noop(self, this_sql: str | None) -> bool:
        """A run that sent nothing and collected nothing: its output is counted, and if empty, marked."""
        return noop.eligible(self.cfg, this_sql) and not self.run.pending_texts and not self.store.result_writes

    def output_and_mark(self, this_sql: str) -> str:
        """Materialise the output (nothing, usually); when it is empty the table matches the state: mark it."""
        self.wh.create_temp_table(OUTPUT, self.output_sql(this_sql))
        if not self.wh.scalar(f"SELECT count(*) FROM {OUTPUT}"):
            rows, fp_sum = noop.rows_signature(self.wh, ROWS)
            noop.record_mark(self.wh, self.store, classifier=self.cfg.name, target=this_sql,
                             sig=self._cheap_signature(this_sql), source=f"{rows}:{fp_sum}",
                             source_rows_n=int(rows), lines=self.noop_lines, run_id=self.run.run_id)
        return f"SELECT * FROM {OUTPUT}"

    def finish(self) -> None:
        self.store.record_run(self.run.row())
        info(self.run.summary())


def classify(
    dbt: Any,
    session: Any,
    *,
    source: Any,
    key: str | list[str] | None = None,
    labels: Any = None,
    instructions: str | None = None,
    text: str | None = None,
    text_template: str | None = None,
    examples: Any = None,
    options: dict | None = None,
    client: Any | None = None,
    **settings: Any,
):
    """Classify the source's rows incrementally; return the rows to merge into this model.

    Use in a dbt Python model materialized as ``incremental`` with ``unique_key`` = the key column(s)
    and ``incremental_strategy='delete+insert'``. Settings come from the model's ``meta.claude``
    config (found in dbt's manifest: a Python model's ``dbt`` object only carries the keys its file
    names), then ``options`` (a dict), then keyword arguments, each winning over the one before; the
    vars ``claude_dry_run`` / ``claude_reclassify`` switch those settings on for any classifier.
    """
    this = dbt.this
    name = getattr(this, "identifier", None) or str(this).split(".")[-1].strip('"')
    # Temp files of runs killed with kill -9 (dead PIDs only); and list dbt-duckdb's file holding this
    # model's compiled code (the module that defines the ``dbt`` object), which a kill would leave too.
    removed = tmpfiles.sweep()
    if removed:
        info(f"removed {len(removed)} temp file(s) left by killed runs")
    tmpfiles.own_file(getattr(type(dbt).__init__, "__globals__", {}).get("__file__"))
    options, forced = dbt_context.resolve(dbt_context.model_node(this), options, warn)
    cfg = config_mod.build_config(
        name, options, key=key, text=text, text_template=text_template, labels=labels,
        instructions=instructions, examples=examples, **{**settings, **forced},
    )
    database = getattr(this, "database", None)
    wh = Warehouse(session, database=database, state_schema=cfg.state_schema)
    is_incremental = bool(getattr(dbt, "is_incremental", False))
    this_sql = str(this) if is_incremental and wh.table_exists(str(this)) else None
    return run(cfg, wh, wh.source_sql(source) or source_rows.relation_sql(source), this_sql=this_sql, client=client)


def run(cfg: ClassifierConfig, wh: Warehouse, source_sql: str, *, this_sql: str | None = None,
        client: Any | None = None):
    """One run outside dbt's plumbing (benchmarks and scripts use it too): returns the output relation."""
    made: list[Any] = [client]

    def api_client() -> Any:  # made only if the Models API must be asked, then reused by the run
        if made[0] is None:
            made[0] = make_client(api_version=cfg.api_version)
        return made[0]

    lifecycle.check(cfg, api_client, warn)  # a retired or unknown model fails here, before anything is sent
    escalation = config_mod.escalation_config(cfg)
    if escalation is not None:
        try:
            lifecycle.check(escalation, api_client, warn)
        except config_mod.ConfigError as exc:
            raise config_mod.ConfigError(f"setting 'escalate_to': {exc}") from None
    pipe = Pipeline(cfg, wh, source_sql, client=made[0])
    pipe.prepare()
    pipe.lock()  # raises LockedError naming the holder: nothing is sent
    output_sql = None
    try:
        if not cfg.dry_run:
            pipe.reconcile()
            pipe.collect()
        if pipe.unchanged(this_sql):  # the nightly no-op: the table is current, return no rows
            pipe.finish()
            return wh.relation(f"SELECT * FROM {this_sql} LIMIT 0")
        pipe.gather()
        pipe.submit()
        if cfg.wait_seconds > 0 and not cfg.dry_run:
            deadline = time.monotonic() + cfg.wait_seconds
            while time.monotonic() < deadline and any(
                s.status != BatchStatus.SUBMITTING for s in pipe.store.open_submissions(cfg.name)
            ):
                time.sleep(cfg.poll_seconds)
                pipe.collect()
        if pipe.may_be_noop(this_sql):
            output_sql = pipe.output_and_mark(this_sql)  # under the lock: the mark is a state write
        pipe.finish()
    finally:
        pipe.unlock()
    checkpoint("before_output")
    return wh.relation(output_sql or pipe.output_sql(this_sql))
