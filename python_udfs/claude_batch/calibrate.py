"""Agreement checks without gold labels: a seeded sample classified under alternative configurations.

Without gold labels, the next best evidence that a cheap configuration labels well is that it agrees
with the expensive one: one row per request (../shared/reference/cost-model.md, "Cost is only half
of it"). A calibration takes a seeded random sample of a classifier's distinct texts and sends it, in
one batch, under these variants:

- ``one_per_request``: one row a request, the reference every other variant is compared with;
- ``as_configured``: the classifier's pack size and answer format, rows in sample order;
- ``shuffled``: the same packs' rows in a seeded random order: rows whose label changes between it
  and ``as_configured`` depend on their position in the pack (Lin et al. 2024, arXiv 2309.00384);
- ``pack_size_N``: other pack sizes (default: twice the configured one);
- ``other_format``: the configured pack size in the other answer format (grouped / keyed).

Before anything is sent, every variant's requests are priced (upper bound: every input token uncached
at the batch input price, ``max_tokens`` of output); variants are kept in that order while the total
stays within ``max_usd`` (default: the classifier's ``max_usd_per_run``, else no cap), and the
reference must fit or nothing is sent. Results are state tables in the classifier's state schema,
per calibration and classifier version:

- ``cb_calibrations``: one row per calibration (classifier, version, sample, seed, batch, status,
  estimated and billed dollars);
- ``cb_calibration_variants``: one row per variant (pack size, answer format, order, the variant's
  own classifier version, requests, estimated and billed dollars);
- ``cb_calibration_items``: one row per (variant, sampled text): its place in its pack, status, labels;

and views:

- ``cb_calibration_agreement``: per calibration and variant, overall (label NULL) and per reference
  label: texts compared (both answered), agreement with ``one_per_request`` (the same label set),
  Cohen's kappa (overall; label sets as categories) and the variant's billed dollars;
- ``cb_calibration_position_changes``: the sampled texts whose label differs between
  ``as_configured`` and ``shuffled`` (same pack size, another place).

A calibration is resumable: run it again and it collects its batch once the batch has ended (or
waits ``wait_seconds`` for it); a collected calibration is reused for the same classifier version,
sample and variants until ``fresh=True``. ``recommended_pack_size`` picks the largest pack size whose
agreement stays at or above a threshold (98 % by default), the rule ``pack_size: auto`` would follow.

Use it from a dbt Python model that runs after the classifier (its settings are read from the state
tables, so nothing is repeated)::

    from claude_batch.calibrate import calibrate

    def model(dbt, session):
        dbt.config(materialized="table")
        dbt.ref("review_sentiment")          # after the classifier
        return calibrate(dbt, session, classifier="review_sentiment", source=dbt.source("app", "reviews"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from datetime import datetime, timezone

from . import batches, catalog, config as config_mod, cost, logs, prompts, source as source_rows, tokens
from .config import ClassifierConfig, ConfigError
from .warehouse import Sql, Warehouse, quote_literal


DEFAULT_SAMPLE = 200
DEFAULT_MIN_AGREEMENT = 0.98

_DDL = {
    "cb_calibrations": """
        calibration_id VARCHAR NOT NULL, classifier VARCHAR, version VARCHAR, sample_size INTEGER, seed BIGINT,
        variants VARCHAR, batch_id VARCHAR, status VARCHAR, note VARCHAR, estimated_usd DOUBLE, billed_usd DOUBLE,
        created_at TIMESTAMP, collected_at TIMESTAMP""",
    "cb_calibration_variants": """
        calibration_id VARCHAR NOT NULL, variant VARCHAR NOT NULL, ordinal INTEGER, pack_size INTEGER,
        answer_format VARCHAR, shuffled BOOLEAN, variant_version VARCHAR, requests INTEGER,
        estimated_usd DOUBLE, billed_usd DOUBLE""",
    "cb_calibration_items": """
        calibration_id VARCHAR NOT NULL, variant VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, custom_id VARCHAR,
        item_id INTEGER, position INTEGER, pack_rows INTEGER, status VARCHAR, labels {string_list}""",
}
_VIEWS = {
    # Every variant's answer beside the reference's, label sets as sorted strings (the categories).
    "cb_calibration_pairs": """
        SELECT v.calibration_id, c.classifier, c.version, v.variant, w.ordinal, v.text_hash,
               {label_v} AS label, {label_r} AS reference
        FROM {cb_calibration_items} v
        JOIN {cb_calibration_items} r ON r.calibration_id = v.calibration_id AND r.text_hash = v.text_hash
             AND r.variant = 'one_per_request'
        JOIN {cb_calibrations} c ON c.calibration_id = v.calibration_id
        JOIN {cb_calibration_variants} w ON w.calibration_id = v.calibration_id AND w.variant = v.variant
        WHERE v.status = 'succeeded' AND r.status = 'succeeded'
    """,
    "cb_calibration_agreement": """
        WITH p AS (SELECT * FROM {cb_calibration_pairs}),
        n AS (SELECT calibration_id, variant, count(*) AS texts, avg(CAST(label = reference AS INTEGER)) AS agreement
              FROM p GROUP BY calibration_id, variant),
        by_variant AS (SELECT calibration_id, variant, label AS cat, count(*) AS k FROM p
                       GROUP BY calibration_id, variant, label),
        by_reference AS (SELECT calibration_id, variant, reference AS cat, count(*) AS k FROM p
                         GROUP BY calibration_id, variant, reference),
        margins AS (  -- pe: how often two labellers with these label shares would agree by chance
            SELECT v.calibration_id, v.variant, sum(CAST(v.k AS DOUBLE) * r.k) / any_value(n.texts * n.texts) AS pe
            FROM by_variant v JOIN by_reference r USING (calibration_id, variant, cat)
            JOIN n USING (calibration_id, variant) GROUP BY v.calibration_id, v.variant)
        SELECT c.calibration_id, c.classifier, c.version, w.variant, w.ordinal, w.pack_size, w.answer_format,
               w.shuffled, {null_text} AS label, n.texts, n.agreement,
               CASE WHEN m.pe < 1 THEN (n.agreement - m.pe) / (1 - m.pe) END AS kappa,
               w.estimated_usd, w.billed_usd
        FROM {cb_calibration_variants} w
        JOIN {cb_calibrations} c ON c.calibration_id = w.calibration_id
        LEFT JOIN n ON n.calibration_id = w.calibration_id AND n.variant = w.variant
        LEFT JOIN margins m ON m.calibration_id = w.calibration_id AND m.variant = w.variant
        UNION ALL
        SELECT p.calibration_id, p.classifier, p.version, p.variant, any_value(p.ordinal), any_value(w.pack_size),
               any_value(w.answer_format), any_value(w.shuffled), p.reference, count(*),
               avg(CAST(p.label = p.reference AS INTEGER)), NULL, NULL, NULL
        FROM p JOIN {cb_calibration_variants} w ON w.calibration_id = p.calibration_id AND w.variant = p.variant
        GROUP BY p.calibration_id, p.classifier, p.version, p.variant, p.reference
    """,
    "cb_calibration_position_changes": """
        SELECT a.calibration_id, c.classifier, c.version, a.text_hash, a.pack_rows,
               a.position AS position_as_configured, s.position AS position_shuffled,
               a.labels AS labels_as_configured, s.labels AS labels_shuffled, r.labels AS labels_one_per_request
        FROM {cb_calibration_items} a
        JOIN {cb_calibration_items} s ON s.calibration_id = a.calibration_id AND s.text_hash = a.text_hash
             AND s.variant = 'shuffled'
        LEFT JOIN {cb_calibration_items} r ON r.calibration_id = a.calibration_id AND r.text_hash = a.text_hash
             AND r.variant = 'one_per_request'
        JOIN {cb_calibrations} c ON c.calibration_id = a.calibration_id
        WHERE a.variant = 'as_configured' AND a.status = 'succeeded' AND s.status = 'succeeded'
          AND {sorted_a} <> {sorted_s}
    """,
}


@dataclass(frozen=True)
class Variant:
    name: str
    pack_size: int
    answer_format: str
    shuffled: bool = False


def default_variants(cfg: ClassifierConfig, pack_sizes: Sequence[int] | None = None) -> list[Variant]:
    if cfg.auto_pack_size:  # no configured pack size: the candidates pack_size: auto chooses among
        return auto_variants(cfg)
    fmt = cfg.spec.answer_format
    other = "keyed" if fmt == "grouped" else "grouped"
    out = [Variant("one_per_request", 1, fmt), Variant("as_configured", cfg.pack_size, fmt),
           Variant("shuffled", cfg.pack_size, fmt, shuffled=True)]
    for size in pack_sizes if pack_sizes is not None else (cfg.pack_size * 2,):
        if int(size) not in (1, cfg.pack_size):
            out.append(Variant(f"pack_size_{int(size)}", int(size), fmt))
    out.append(Variant("other_format", cfg.pack_size, other))
    return out


def auto_variants(cfg: ClassifierConfig) -> list[Variant]:
    """What ``pack_size: auto`` measures: one row per request (the reference) and each candidate pack
    size, in the configured answer format, rows in sample order."""
    fmt = cfg.spec.answer_format
    return [Variant("one_per_request", 1, fmt),
            *(Variant(f"pack_size_{size}", size, fmt) for size in cfg.calibration_pack_sizes)]


class Calibration:
    def __init__(self, cfg: ClassifierConfig, wh: Warehouse, source_sql: str, client: Any, *,
                 sample_size: int = DEFAULT_SAMPLE, seed: int = 0, variants: Sequence[Variant] | None = None,
                 max_usd: float | None = None):
        if sample_size < 1:
            raise ConfigError("calibration: sample_size must be at least 1")
        self.cfg, self.wh, self.source_sql, self.client = cfg, wh, source_sql, client
        self.sample_size, self.seed = int(sample_size), int(seed)
        self.variants = list(variants or default_variants(cfg))
        if self.variants[0].name != "one_per_request" or self.variants[0].pack_size != 1:
            raise ConfigError("calibration: the first variant must be one_per_request (pack size 1), the reference")
        self.max_usd = cfg.max_usd_per_run if max_usd is None else max_usd
        self.t = {name: wh.state_table(name) for name in [*_DDL, *_VIEWS]}

    # ------------------------------------------------------------------ state
    def ensure(self) -> None:
        wh = self.wh
        wh.ensure_schema()
        for name, cols in _DDL.items():
            wh.create_table(self.t[name], cols.format(string_list=wh.string_list_type()))
        pieces = {
            "label_v": wh.list_join_sql(wh.list_sort_sql("v.labels"), "','"),
            "label_r": wh.list_join_sql(wh.list_sort_sql("r.labels"), "','"),
            "sorted_a": wh.list_sort_sql("a.labels"), "sorted_s": wh.list_sort_sql("s.labels"),
            "null_text": wh.text_sql("NULL"),
        }
        for name, body in _VIEWS.items():
            wh.create_view(self.t[name], body.format(**self.t, **pieces))

    @property
    def variants_key(self) -> str:
        return json.dumps([dataclasses.astuple(v) for v in self.variants])

    def existing(self) -> dict | None:
        rows = self.wh.fetch_dicts(
            f"SELECT * FROM {self.t['cb_calibrations']} WHERE classifier = ? AND version = ? AND sample_size = ? "
            "AND seed = ? AND variants = ? ORDER BY created_at DESC LIMIT 1",
            [self.cfg.name, self.cfg.version, self.sample_size, self.seed, self.variants_key])
        return rows[0] if rows else None

    # ------------------------------------------------------------------ sample and requests
    def sample(self) -> list[tuple[str, str]]:
        """(text_hash, text) of ``sample_size`` distinct texts, chosen by a seeded hash order: the same
        sample for the same source, seed and size."""
        rows = source_rows.rows_sql(self.wh, self.source_sql, self.cfg)
        return [(str(h), t) for h, t in self.wh.fetchall(f"""
            SELECT text_hash, any_value(text) FROM ({rows}) r WHERE skip_reason IS NULL
            GROUP BY text_hash ORDER BY md5({self.wh.text_sql("text_hash")} || ?) LIMIT ?""",
            [str(self.seed), self.sample_size])]

    def spec_for(self, variant: Variant) -> prompts.PromptSpec:
        return dataclasses.replace(self.cfg.spec, answer_format=variant.answer_format)

    def plan(self, sample: list[tuple[str, str]], calibration_id: str) -> list[dict]:
        """Per variant: its requests (custom_id, params, [(item_id, position, text_hash)]) and estimate."""
        info = catalog.model_info(self.cfg.spec.model)
        band = info.prices[0] if info.prices else None
        # The prefix is marked for caching as the classifier would mark it (one batch: the first
        # request writes it, the rest read it); the estimate still counts it uncached (upper bound).
        probe = prompts.build_params(self.cfg.spec, [(1, "")], cache=False)
        n_requests = sum(-(-len(sample) // v.pack_size) for v in self.variants)
        cache = cost.cache_plan(self.cfg.spec.model, cost.prefix_tokens(probe), expected_requests=n_requests,
                                batch=True, policy=self.cfg.cache, ttl=self.cfg.spec.cache_ttl).mark
        out = []
        for ordinal, variant in enumerate(self.variants):
            order = list(sample)
            if variant.shuffled:
                random.Random(f"{self.seed}:{variant.name}").shuffle(order)
            spec = self.spec_for(variant)
            requests = []
            for start in range(0, len(order), variant.pack_size):
                pack = order[start:start + variant.pack_size]
                items = [(i, text) for i, (_, text) in enumerate(pack, start=1)]
                cid = f"cal{calibration_id}-{ordinal}-{start // variant.pack_size}"
                params = prompts.build_params(spec, items, cache=cache)
                requests.append({"custom_id": cid, "params": params,
                                 "items": [(i, i, h) for i, (h, _) in enumerate(pack, start=1)]})
            estimate = None
            if band is not None:  # an upper bound: nothing cached, every max_tokens spent
                estimate = sum((tokens.count_request(r["params"]) * band.input + r["params"]["max_tokens"] * band.output)
                               for r in requests) * catalog.BATCH_DISCOUNT / cost.MTOK
            out.append({"variant": variant, "ordinal": ordinal, "requests": requests, "estimated_usd": estimate,
                        "version": config_mod.classifier_version(spec)})
        return out

    # ------------------------------------------------------------------ the steps
    def submit(self) -> dict:
        sample = self.sample()
        calibration_id = uuid.uuid4().hex[:12]
        planned = self.plan(sample, calibration_id)
        kept, total, dropped = [], 0.0, []
        for entry in planned:
            usd = entry["estimated_usd"] or 0.0
            if self.max_usd is not None and total + usd > self.max_usd:
                dropped.append(entry["variant"].name)
                continue
            kept.append(entry)
            total += usd
        status, note, batch_id = "submitted", None, None
        if dropped:
            note = (f"budget ${self.max_usd:.4f}: variant(s) {', '.join(dropped)} not sent "
                    f"(estimated ${sum(e['estimated_usd'] or 0 for e in planned):.4f} for all)")
            logs.warn(f"calibration of {self.cfg.name}: {note}")
        if not kept or kept[0]["variant"].name != "one_per_request" or len(kept) < 2:
            status, kept = "over_budget", []
        logs.info(f"calibration of {self.cfg.name} v{self.cfg.version}: {len(sample)} texts, {len(kept)} variant(s), "
                  f"estimated ${total:.4f}")
        # The intent, before the batch exists: items, variants, then the calibration's row, which
        # commits it (each one write). Items and variants of an intent killed before its row carry an
        # id no calibration row has: every reader and view joins cb_calibrations, so they are ignored.
        wh = self.wh
        for entry in kept:
            v = entry["variant"]
            rows = [(text_hash, r["custom_id"], item_id, position, len(r["items"]))
                    for r in entry["requests"] for item_id, position, text_hash in r["items"]]
            wh.append(self.t["cb_calibration_items"], {
                "calibration_id": [calibration_id] * len(rows), "variant": [v.name] * len(rows),
                "text_hash": [x[0] for x in rows], "custom_id": [x[1] for x in rows],
                "item_id": [x[2] for x in rows], "position": [x[3] for x in rows],
                "pack_rows": [x[4] for x in rows], "status": ["in_flight"] * len(rows)})
        wh.append(self.t["cb_calibration_variants"], {
            "calibration_id": [calibration_id] * len(kept), "variant": [e["variant"].name for e in kept],
            "ordinal": [e["ordinal"] for e in kept], "pack_size": [e["variant"].pack_size for e in kept],
            "answer_format": [e["variant"].answer_format for e in kept],
            "shuffled": [e["variant"].shuffled for e in kept], "variant_version": [e["version"] for e in kept],
            "requests": [len(e["requests"]) for e in kept], "estimated_usd": [e["estimated_usd"] for e in kept]})
        wh.append_select(
            self.t["cb_calibrations"],
            ["calibration_id", "classifier", "version", "sample_size", "seed", "variants", "status", "note",
             "estimated_usd", "created_at"],
            f"SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, {wh.now_sql()}",
            [calibration_id, self.cfg.name, self.cfg.version, self.sample_size, self.seed,
             self.variants_key, "submitting" if kept else status, note, total])
        if kept:
            batch = self.client.messages.batches.create(
                requests=[{"custom_id": r["custom_id"], "params": r["params"]} for e in kept for r in e["requests"]])
            batch_id = batch.id
            self.wh.update(self.t["cb_calibrations"], {"batch_id": batch_id, "status": "submitted"},
                           "calibration_id = ?", [calibration_id])
        return self.load(calibration_id)

    def reconcile(self, row: dict, grace_seconds: float) -> dict:
        """A calibration left 'submitting' (a crash between its intent and the create call's answer):
        adopt the batch the API has (its custom_ids carry the calibration id), or give it up when
        there is none (nothing was sent); one still processing is waited for (never pay twice)."""
        requests = int(self.wh.scalar(
            f"SELECT coalesce(sum(requests), 0) FROM {self.t['cb_calibration_variants']} WHERE calibration_id = ?",
            [row["calibration_id"]]) or 0)
        intent_at = row["created_at"].replace(tzinfo=timezone.utc)
        known = {r[0] for r in self.wh.fetchall(
            f"SELECT batch_id FROM {self.t['cb_calibrations']} WHERE batch_id IS NOT NULL")}
        candidates = batches.find_candidates(self.client, intent_at=intent_at, request_count=requests, exclude=known)
        unverified = [c for c in candidates if c["processing_status"] != "ended"]
        for cand in candidates:
            if cand["processing_status"] == "ended" and cand.get("results_url"):
                first = batches.first_custom_id(self.client, cand["id"]) or ""
                if first.startswith(f"cal{row['calibration_id']}-"):
                    self.wh.update(self.t["cb_calibrations"], {"batch_id": cand["id"], "status": "submitted"},
                                   "calibration_id = ?", [row["calibration_id"]])
                    return self.load(row["calibration_id"])
        age = (datetime.now(timezone.utc) - intent_at).total_seconds()
        if not unverified and (not candidates or age >= grace_seconds):
            self.wh.update(self.t["cb_calibrations"],
                           {"status": "abandoned",
                            "note": "no batch found for this intent: the create call never reached the API"},
                           "calibration_id = ?", [row["calibration_id"]])
        return self.load(row["calibration_id"])

    def load(self, calibration_id: str) -> dict:
        return self.wh.fetch_dicts(f"SELECT * FROM {self.t['cb_calibrations']} WHERE calibration_id = ?",
                                   [calibration_id])[0]

    def collect(self, row: dict) -> dict:
        """Write the batch's answers if it has ended; the calibration row as it then is."""
        batch = self.client.messages.batches.retrieve(row["batch_id"])
        if batch.processing_status != "ended":
            return row
        variants = {v["variant"]: v for v in self.wh.fetch_dicts(
            f"SELECT * FROM {self.t['cb_calibration_variants']} WHERE calibration_id = ?", [row["calibration_id"]])}
        items: dict[str, list[tuple[int, str]]] = {}
        for cid, item_id, variant in self.wh.fetchall(
                f"SELECT custom_id, item_id, variant FROM {self.t['cb_calibration_items']} WHERE calibration_id = ?",
                [row["calibration_id"]]):
            items.setdefault(cid, []).append((item_id, variant))
        billed: dict[str, float] = {}
        outcomes = []
        for line in self.client.messages.batches.results(row["batch_id"]):
            entries = items.get(line.custom_id)
            if not entries:
                continue
            variant = entries[0][1]
            spec = self.spec_for(Variant(variant, variants[variant]["pack_size"], variants[variant]["answer_format"]))
            result = line.result
            if result.type != "succeeded":
                outcomes += [(line.custom_id, item_id, result.type, None) for item_id, _ in entries]
                continue
            message = result.message.model_dump()
            usage = cost.Usage.from_api(message.get("usage"))
            billed[variant] = billed.get(variant, 0.0) + (cost.billed_usd(spec.model, usage) or 0.0)
            parsed, _ = prompts.parse_answer(spec, message.get("content") or [], sorted(i for i, _ in entries))
            outcomes += [(line.custom_id, o.item_id, o.status, list(o.labels) if o.status == "succeeded" else None)
                         for o in parsed]
        # Items, variants, then the calibration's status (the commit point): each one write, each the
        # same values when repeated (a run killed in between collects the batch again).
        import pyarrow as pa

        cal_id, wh = row["calibration_id"], self.wh
        if outcomes:
            staged = pa.table({"custom_id": [o[0] for o in outcomes], "item_id": pa.array([o[1] for o in outcomes], pa.int32()),
                               "status": [o[2] for o in outcomes],
                               "labels": pa.array([o[3] for o in outcomes], pa.list_(pa.string()))})
            with wh.arrow_relation(staged) as rel:
                wh.update_from(self.t["cb_calibration_items"], ["calibration_id", "custom_id", "item_id"],
                               f"SELECT ? AS calibration_id, custom_id, item_id, status, labels FROM {rel}",
                               ["status", "labels"], [cal_id])
        for variant, usd in billed.items():
            wh.update(self.t["cb_calibration_variants"], {"billed_usd": usd}, "calibration_id = ? AND variant = ?",
                      [cal_id, variant])
        wh.update(self.t["cb_calibrations"], {"status": "collected", "billed_usd": sum(billed.values()),
                                               "collected_at": Sql(wh.now_sql())}, "calibration_id = ?", [cal_id])
        return self.load(row["calibration_id"])

    def agreement(self, calibration_id: str) -> list[dict]:
        return self.wh.fetch_dicts(
            f"SELECT * FROM {self.t['cb_calibration_agreement']} WHERE calibration_id = ? "
            "ORDER BY ordinal, label NULLS FIRST", [calibration_id])

    def run(self, *, fresh: bool = False, wait_seconds: float = 0.0, poll_seconds: float = 5.0) -> dict:
        """Submit (or find) this classifier version's calibration and collect it when it has ended."""
        self.ensure()
        row = None if fresh else self.existing()
        if row is None:
            row = self.submit()
        deadline = time.monotonic() + wait_seconds
        while row["status"] == "submitted":
            row = self.collect(row)
            if row["status"] != "submitted" or time.monotonic() >= deadline:
                break
            time.sleep(poll_seconds)
        agreement = self.agreement(row["calibration_id"]) if row["status"] == "collected" else []
        recommended = recommended_pack_size(agreement) if agreement else None
        if agreement:
            shown = ", ".join(f"{a['variant']} {a['agreement']:.1%}" for a in agreement if a["label"] is None
                              and a["agreement"] is not None)
            logs.info(f"calibration of {self.cfg.name} v{self.cfg.version}: {shown}; pack_size auto would pick {recommended}")
        return {"calibration": row, "agreement": agreement, "recommended_pack_size": recommended}


def auto_pack_size(cfg: ClassifierConfig, wh: Warehouse, source_sql: str, client: Any, *, max_usd: float | None,
                   submit: bool = True) -> tuple[int | None, float]:
    """``pack_size: auto``: (the pack size to send this version's rows with, or None while its
    calibration is not collected yet; the dollars this call committed, an estimate).

    The version's calibration (``auto_variants``, ``calibration_sample`` texts, seed 0) is made once
    and reused; a new classifier version has none, so its first run submits one, within ``max_usd``,
    and its rows wait for the answer (the run waits up to ``wait_seconds``; else the next run collects
    it). A calibration the budget could not afford is tried again by the next run.
    """
    job = Calibration(cfg, wh, source_sql, client, sample_size=cfg.calibration_sample, seed=0,
                      variants=auto_variants(cfg), max_usd=max_usd)
    job.ensure()
    row, spent = job.existing(), 0.0
    if not submit:  # a dry run: what a collected calibration says, nothing sent
        if row is None or row["status"] != "collected":
            logs.info(f"pack_size auto: no collected calibration of version {cfg.version}; a real run calibrates first")
            return None, 0.0
        return recommended_pack_size(job.agreement(row["calibration_id"]), cfg.min_agreement), 0.0
    if row is not None and row["status"] == "submitting":
        row = job.reconcile(row, cfg.reconcile_grace_seconds)
    if row is None or row["status"] in ("over_budget", "abandoned"):
        row = job.submit()
        if row["status"] == "over_budget":
            logs.warn(f"pack_size auto: the calibration of version {cfg.version} does not fit the budget "
                 f"(${max_usd:.4f} left this run; {row['note'] or 'even one row per request is over it'}); its rows "
                 "wait for a run with room (raise max_usd_per_run / max_usd_per_day / calibration_max_usd, or "
                 "set pack_size to a number)")
            return None, 0.0
        spent = float(row["estimated_usd"] or 0.0)
        logs.info(f"pack_size auto: no calibration of version {cfg.version} yet; submitted one (batch {row['batch_id']}, "
            f"{cfg.calibration_sample} texts at most, one row per request and pack sizes "
            f"{', '.join(map(str, cfg.calibration_pack_sizes))}, estimated up to ${spent:.4f})")
    deadline = time.monotonic() + cfg.wait_seconds
    while row["status"] == "submitted":
        row = job.collect(row)
        if row["status"] != "submitted" or time.monotonic() >= deadline:
            break
        time.sleep(cfg.poll_seconds)
    if row["status"] != "collected":
        logs.info(f"pack_size auto: calibration {row['calibration_id']} of version {cfg.version} is {row['status']}; "
            "rows of this version wait for it (the next run collects it)")
        return None, spent
    agreement = job.agreement(row["calibration_id"])
    chosen = recommended_pack_size(agreement, cfg.min_agreement)
    measured = ", ".join(f"{a['pack_size']} → {a['agreement']:.1%} of {a['texts']}" for a in agreement
                         if a["label"] is None and a["variant"] != "one_per_request" and a["agreement"] is not None)
    logs.info(f"pack_size auto: {chosen} for version {cfg.version}, the largest pack size whose agreement with one row "
        f"per request is at least {cfg.min_agreement:.1%} (calibration {row['calibration_id']}: {measured})")
    return chosen, spent


def recommended_pack_size(agreement: Sequence[dict], min_agreement: float = DEFAULT_MIN_AGREEMENT) -> int:
    """The largest pack size (in the configured answer format, rows in order) whose agreement with one
    row per request is at least ``min_agreement``; 1 when none is."""
    best = 1
    for row in agreement:
        if row["label"] is not None or row["shuffled"] or row["variant"] == "other_format" or row["agreement"] is None:
            continue
        if row["agreement"] >= min_agreement and row["pack_size"] > best:
            best = int(row["pack_size"])
    return best


# ---------------------------------------------------------------------------- the classifier's settings


def config_from_state(wh: Warehouse, classifier: str) -> ClassifierConfig:
    """The classifier's configuration as its latest run recorded it (cb_runs -> cb_versions)."""
    t = lambda name: wh.state_table(name)  # noqa: E731
    found = wh.fetchall(
        f"SELECT v.settings_json FROM {t('cb_runs')} r JOIN {t('cb_versions')} v "
        "ON v.classifier = r.classifier AND v.version = r.version "
        "WHERE r.classifier = ? ORDER BY r.started_at DESC LIMIT 1", [classifier])
    if not found:
        raise ConfigError(f"calibration: classifier {classifier!r} has no run in the state tables yet: run it first")
    settings = json.loads(found[0][0])
    spec = settings["spec"]
    options: dict[str, Any] = {
        "key": settings["key_columns"], "text": settings.get("text_column"), "text_template": settings.get("text_template"),
        "labels": {label["name"]: label["description"] for label in spec["labels"]},
        "instructions": spec["instructions"], "model": spec["model"], "multi_label": spec["multi_label"],
        "examples": [{"text": e["text"], "labels": e["labels"]} for e in spec["examples"]],
        "output_mode": spec.get("output_mode"), "cache_ttl": spec.get("cache_ttl", "1h"),
        "answer_format": spec.get("answer_format", "grouped"),
        **{k: v for k, v in spec.get("sampling") or ()},
    }
    if spec.get("extra"):
        options["extra"] = dict(spec["extra"])
    if settings.get("unsure"):  # the label it adds is in the spec's labels already
        options["labels"].pop(config_mod.UNSURE_LABEL, None)
    for key in ("unsure", "escalate_to", "min_agreement", "calibration_sample", "calibration_pack_sizes",
                "calibration_max_usd", "pack_size", "max_pack_chars", "max_text_chars", "on_too_long", "max_usd_per_run", "state_schema",
                "api_version", "prices", "cache"):
        if settings.get(key) is not None:
            options[key] = settings[key]
    cfg = config_mod.build_config(classifier, options)
    if cfg.version != settings["version"]:
        raise ConfigError(f"calibration: the recorded settings of {classifier!r} rebuild version {cfg.version}, "
                          f"not {settings['version']}")
    return cfg


def calibrate(dbt: Any, session: Any, *, classifier: str, source: Any, sample_size: int = DEFAULT_SAMPLE,
              seed: int = 0, pack_sizes: Sequence[int] | None = None, max_usd: float | None = None,
              fresh: bool = False, wait_seconds: float = 0.0, poll_seconds: float = 5.0,
              state_schema: str = "claude_batch", client: Any | None = None):
    """A dbt Python model's calibration of ``classifier`` (see the module docstring); returns the
    agreement rows (empty until the batch has ended: run the model again)."""
    from .client import make_client

    database = getattr(dbt.this, "database", None)
    wh = Warehouse(session, database=database, state_schema=state_schema)
    cfg = config_from_state(wh, classifier)
    client = client or make_client(api_version=cfg.api_version)
    job = Calibration(cfg, wh, wh.source_sql(source) or source_rows.relation_sql(source), client, sample_size=sample_size, seed=seed,
                      variants=default_variants(cfg, pack_sizes), max_usd=max_usd)
    out = job.run(fresh=fresh, wait_seconds=wait_seconds, poll_seconds=poll_seconds)
    calibration_id = out["calibration"]["calibration_id"]
    # The calibration's state and agreement rows (none until its batch has ended: run the model again).
    return wh.relation(f"""
        SELECT c.calibration_id, c.status AS calibration_status, c.estimated_usd AS calibration_estimated_usd,
               c.billed_usd AS calibration_billed_usd, a.variant, a.pack_size, a.answer_format, a.shuffled, a.label,
               a.texts, a.agreement, a.kappa, a.billed_usd,
               {out['recommended_pack_size'] or 'NULL'} AS recommended_pack_size
        FROM {job.t['cb_calibrations']} c LEFT JOIN {job.t['cb_calibration_agreement']} a USING (calibration_id)
        WHERE c.calibration_id = {quote_literal(calibration_id)}""")
