"""A static HTML report of one classifier, from its state tables: what it cost and how good its labels are.

    python -m claude_batch.report --db warehouse.duckdb --classifier review_sentiment --out report.html

One self-contained file (inline CSS and SVG: no script, no font or stylesheet from the network), to
open in a browser, attach to a ticket or publish as a CI artifact. Like ``edr report`` of the
Elementary dbt package, it is a command beside dbt that reads what the dbt runs wrote:

- **cost against quality**, one point per configuration measured: each variant of the latest
  collected calibration of each classifier version (``cb_calibration_agreement``: agreement with one
  row per request, against its billed dollars per 1,000 texts) and, given ``--evaluation`` (a model
  built with the ``claude_batch_evaluate`` macro), each version's accuracy against gold labels
  against its ``cost_usd`` per 1,000 gold rows;
- **the confusion matrix**: gold against predicted from ``--confusion`` (a model built with
  ``claude_batch_confusion``), else the latest calibration's configured answers against one row
  per request;
- **label counts over time**: distinct texts labelled, by when their answer was collected
  (``cb_current_results``), per label;
- **what each run cost**: ``cb_cost_by_run`` (billed, naive, saved; killed runs included).

It only reads (a DuckDB file is opened read-only, so it can run beside nothing else holding the file);
every query goes through :class:`~claude_batch.warehouse.Warehouse`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import jinja2

from . import _svg
from .errors import ClaudeBatchError
from .warehouse import Warehouse, open_database


PER = 1000  # dollars are shown per 1,000 texts (or gold rows): sample sizes differ between configurations


class ReportError(ClaudeBatchError, ValueError):
    """The report cannot be made as asked (no such classifier, a relation without the expected columns)."""


# ---------------------------------------------------------------------------- formatting


def usd(value: float | None) -> str:
    """Dollars with enough digits for a fraction of a cent (batch prices of small runs)."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"${value:,.2f}"
    if abs(value) >= 1:
        return f"${value:.4f}"
    return f"${value:.6f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f} %"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def short(version: str | None) -> str:
    return (version or "?")[:8]


# ---------------------------------------------------------------------------- reading the state


def _bucket_unit(first: dt.datetime | None, last: dt.datetime | None) -> str:
    """The coarsest time bucket that still shows a dozen steps over the span of the results."""
    if first is None or last is None:
        return "day"
    span = (last - first).total_seconds()
    return "day" if span > 3 * 86400 else "hour" if span > 3 * 3600 else "minute"


def _relation_rows(wh: Warehouse, relation: str, needed: Sequence[str], what: str) -> list[dict]:
    if not wh.table_exists(relation):
        raise ReportError(f"{what}: relation {relation} does not exist (build it with dbt first)")
    rows = wh.fetch_dicts(f"SELECT * FROM {relation}")
    columns = set(wh.columns_of(relation))
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ReportError(f"{what}: relation {relation} has no column(s) {', '.join(missing)}")
    return rows


def read(wh: Warehouse, classifier: str, *, evaluation: str | None = None, confusion: str | None = None) -> dict:
    """Everything the report shows, as plain Python values (also what the tests compare with)."""
    t = wh.state_table
    if not wh.table_exists(t("cb_versions")):
        raise ReportError(f"no state tables in schema {wh.state_schema!r}: run the classifier with dbt first")
    versions = wh.fetch_dicts(
        f"SELECT version, model, first_seen_at, settings_json FROM {t('cb_versions')} WHERE classifier = ? "
        "ORDER BY first_seen_at, version", [classifier])
    if not versions:
        known = [r[0] for r in wh.fetchall(f"SELECT DISTINCT classifier FROM {t('cb_versions')} ORDER BY 1")]
        raise ReportError(f"classifier {classifier!r} has no version in the state tables (known: {', '.join(known) or 'none'})")
    for v in versions:
        settings = json.loads(v.pop("settings_json") or "{}")
        v["pack_size"] = settings.get("pack_size")
        v["answer_format"] = (settings.get("spec") or {}).get("answer_format", "grouped")
        v["multi_label"] = bool((settings.get("spec") or {}).get("multi_label"))
    by_version = {v["version"]: v for v in versions}

    runs = wh.fetch_dicts(f"SELECT * FROM {t('cb_cost_by_run')} WHERE classifier = ? ORDER BY started_at, run_id",
                          [classifier])
    totals = {k: sum(r[k] or 0 for r in runs) for k in ("billed_usd", "naive_usd", "saved_usd", "submitted_texts",
                                                          "submitted_requests")}
    results = wh.fetch_dicts(
        f"SELECT count(*) AS texts, min(collected_at) AS first_at, max(collected_at) AS last_at "
        f"FROM {t('cb_current_results')} WHERE classifier = ? AND status = 'succeeded'", [classifier])[0]
    unit = _bucket_unit(results["first_at"], results["last_at"])
    bucket = wh.time_bucket_sql(unit, "collected_at")
    counts: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for when, labels, n in wh.fetchall(
            f"SELECT {bucket} AS bucket, labels, count(*) FROM {t('cb_current_results')} "
            "WHERE classifier = ? AND status = 'succeeded' GROUP BY " + bucket + ", labels", [classifier]):
        for label in labels or ():
            counts[when][label] += n
    label_names = sorted({label for c in counts.values() for label in c})
    over_time = {"unit": unit, "labels": label_names,
                 "buckets": [(when, dict(counts[when])) for when in sorted(counts)]}

    calibrations = _calibrations(wh, classifier, by_version)
    evaluated = _evaluation(wh, evaluation, by_version) if evaluation else []
    matrix = _confusion(wh, confusion) if confusion else None
    if matrix is None and calibrations:
        matrix = _calibration_matrix(wh, calibrations[-1])

    points = []
    for cal in calibrations:
        for a in cal["variants"]:
            if a["agreement"] is None or a["billed_usd"] is None or not a["sent"]:
                continue
            points.append({"series": f"agreement, version {short(cal['version'])}", "name": a["variant"],
                           "x": a["billed_usd"] / a["sent"] * PER, "y": a["agreement"]})
    for e in evaluated:
        if e["accuracy"] is None or e["cost_usd"] is None or not e["gold_rows"]:
            continue
        v = by_version.get(e["classifier_version"], {})
        points.append({"series": "accuracy vs gold", "name": f"version {short(e['classifier_version'])} "
                       f"({v.get('answer_format', '?')}, {v.get('pack_size', '?')} a request)",
                       "x": e["cost_usd"] / e["gold_rows"] * PER, "y": e["accuracy"]})
    return {"classifier": classifier, "state_schema": wh.state_schema, "versions": versions, "runs": runs,
            "totals": totals, "labelled_texts": results["texts"], "over_time": over_time,
            "calibrations": calibrations, "evaluation": evaluated, "confusion": matrix, "points": points,
            "evaluation_relation": evaluation, "confusion_relation": confusion}


def _calibrations(wh: Warehouse, classifier: str, by_version: dict) -> list[dict]:
    """The latest collected calibration of each version (oldest version first), with its variants."""
    t = wh.state_table
    if not wh.table_exists(t("cb_calibration_agreement")):
        return []
    latest: dict[str, dict] = {}
    for row in wh.fetch_dicts(
            f"SELECT calibration_id, version, sample_size, seed, status, note, estimated_usd, billed_usd, created_at, "
            f"collected_at FROM {t('cb_calibrations')} WHERE classifier = ? AND status = 'collected' "
            "ORDER BY collected_at", [classifier]):
        latest[row["version"]] = row
    out = []
    for version, cal in latest.items():
        cid = cal["calibration_id"]
        items = dict(wh.fetchall(f"SELECT variant, count(*) FROM {t('cb_calibration_items')} WHERE calibration_id = ? "
                                 "GROUP BY variant", [cid]))
        cal["variants"] = [{**a, "sent": items.get(a["variant"], 0)} for a in wh.fetch_dicts(
            f"SELECT variant, ordinal, pack_size, answer_format, shuffled, texts, agreement, kappa, estimated_usd, "
            f"billed_usd FROM {t('cb_calibration_agreement')} WHERE calibration_id = ? AND label IS NULL "
            "ORDER BY ordinal", [cid])]
        cal["position_changes"] = wh.scalar(
            f"SELECT count(*) FROM {t('cb_calibration_position_changes')} WHERE calibration_id = ?", [cid])
        cal["first_seen_at"] = (by_version.get(version) or {}).get("first_seen_at")
        out.append(cal)
    out.sort(key=lambda c: (c["first_seen_at"] is None, c["first_seen_at"] or dt.datetime.min))
    return out


def _calibration_matrix(wh: Warehouse, cal: dict) -> dict | None:
    rows = wh.fetchall(
        f"SELECT reference, label, count(*) FROM {wh.state_table('cb_calibration_pairs')} "
        "WHERE calibration_id = ? AND variant = 'as_configured' GROUP BY reference, label", [cal["calibration_id"]])
    if not rows:
        return None
    return _matrix("calibration", f"version {short(cal['version'])}: as configured (columns) against one row per request "
                   f"(rows), {cal['sample_size']}-text sample", [((r or "(none)"), (p or "(none)"), n) for r, p, n in rows],
                   "one row per request", "as configured")


def _evaluation(wh: Warehouse, relation: str, by_version: dict) -> list[dict]:
    rows = _relation_rows(wh, relation, ["classifier_version", "scope", "accuracy", "kappa", "coverage",
                                          "gold_rows", "labelled_rows", "cost_usd"], "--evaluation")
    out = [r for r in rows if r["scope"] == "overall"]
    out.sort(key=lambda r: ((by_version.get(r["classifier_version"]) or {}).get("first_seen_at") or dt.datetime.min,
                            r["classifier_version"] or ""))
    return out


def _confusion(wh: Warehouse, relation: str) -> dict:
    columns = set(wh.columns_of(relation)) if wh.table_exists(relation) else set()
    single = {"gold_label", "predicted_label"} <= columns
    needed = ["gold_label", "predicted_label"] if single else ["label", "gold", "predicted"]
    rows = _relation_rows(wh, relation, ["classifier_version", *needed, "row_count"], "--confusion")
    # One version's matrix: the one with the most gold rows, which the table mostly holds.
    totals: dict[Any, int] = defaultdict(int)
    for r in rows:
        totals[r["classifier_version"]] += r["row_count"]
    version = max(totals, key=lambda v: (totals[v], v or ""), default=None)
    rows = [r for r in rows if r["classifier_version"] == version]
    if single:
        return _matrix("gold", f"version {short(version)}: predicted (columns) against gold (rows)",
                       [(r["gold_label"], r["predicted_label"], r["row_count"]) for r in rows], "gold", "predicted")
    # multi-label: a 2x2 matrix per label, as one table of (label: gold has it?) x (predicted has it?)
    cells = [(f"{r['label']}: {'yes' if r['gold'] else 'no'}", "yes" if r["predicted"] else "no", r["row_count"])
             for r in rows]
    return _matrix("gold", f"version {short(version)}, per label: predicted has it (columns) against gold has it (rows)",
                   cells, "gold", "predicted", square=False)


def _matrix(kind: str, caption: str, cells: Sequence[tuple[str, str, int]], row_title: str, col_title: str,
            square: bool = True) -> dict:
    """A matrix of counts; ``square``: rows and columns are the same labels (the diagonal agrees)."""
    rows = sorted({r for r, _, _ in cells} | ({c for _, c, _ in cells} if square else set()))
    cols = rows if square else sorted({c for _, c, _ in cells})
    grid = {(r, c): n for r, c, n in cells}
    return {"kind": kind, "caption": caption, "rows": rows, "cols": cols, "row_title": row_title,
            "col_title": col_title, "cells": {r: {c: grid.get((r, c), 0) for c in cols} for r in rows},
            "max": max((n for _, _, n in cells), default=0) or 1, "square": square}


# ---------------------------------------------------------------------------- rendering


def charts(data: dict) -> dict[str, str]:
    """The SVG of each chart (empty when there is nothing to draw)."""
    out = {"quality": "", "runs": "", "labels": ""}
    if data["points"]:
        out["quality"] = _svg.scatter(data["points"], x_title=f"billed $ per {PER:,} texts", y_title="agreement / accuracy",
                                      x_fmt=lambda v: f"${v:.4g}", y_fmt=lambda v: f"{v * 100:.0f} %",
                                      label="cost against agreement or accuracy, per configuration")
    runs = data["runs"]
    if runs:
        out["runs"] = _svg.bars([f"run {i + 1}" for i in range(len(runs))], ["billed", "saved"],
                                [[r["billed_usd"] or 0.0, r["saved_usd"] or 0.0] for r in runs],
                                y_title="$", y_fmt=lambda v: f"${v:.3g}", label="what each run cost",
                                colours=[_svg.PALETTE[0], "#B8D8EE"])
    over = data["over_time"]
    if over["buckets"]:
        fmt = {"day": "%Y-%m-%d", "hour": "%m-%d %H:00", "minute": "%H:%M"}[over["unit"]]
        names = [when.strftime(fmt) if hasattr(when, "strftime") else str(when) for when, _ in over["buckets"]]
        out["labels"] = _svg.bars(names, over["labels"], [[c.get(x, 0) for x in over["labels"]] for _, c in over["buckets"]],
                                  y_title="texts labelled", y_fmt=lambda v: f"{v:,.0f}",
                                  label=f"texts labelled per {over['unit']}, by label")
    return out


def render(data: dict, *, generated_at: dt.datetime | None = None) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("claude_batch", "_templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(usd=usd, pct=pct, num=num, short=short)
    when = generated_at or dt.datetime.now(dt.timezone.utc)
    svgs = {k: jinja2.utils.markupsafe.Markup(v) for k, v in charts(data).items()}  # built escaped, by _svg
    return env.get_template("report.html").render(d=data, charts=svgs, per=PER,
                                                  generated_at=when.strftime("%Y-%m-%d %H:%M UTC"))


def write(wh: Warehouse, classifier: str, out: str | Path, *, evaluation: str | None = None,
          confusion: str | None = None) -> dict:
    """Read the state and write the report to ``out``; returns what was read."""
    data = read(wh, classifier, evaluation=evaluation, confusion=confusion)
    Path(out).write_text(render(data), encoding="utf-8")
    return data


def profile_database(project_dir: str = ".", profiles_dir: str | None = None, target: str | None = None) -> str:
    """The DuckDB file of the dbt project's profile (``path:``), read by dbt itself (env_var, targets)."""
    import os
    from argparse import Namespace

    from dbt.cli.resolvers import default_profiles_dir
    from dbt.config.runtime import load_profile
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    profiles_dir = profiles_dir or os.environ.get("DBT_PROFILES_DIR") or str(default_profiles_dir())
    set_invocation_context(os.environ)
    set_from_args(Namespace(profiles_dir=profiles_dir), None)
    try:
        profile = load_profile(project_dir, {}, None, target, None)
    except Exception as exc:  # dbt's own message names the file and the missing piece
        raise ReportError(f"cannot read the dbt profile (project {project_dir}, profiles {profiles_dir}): {exc}") from exc
    if profile.credentials.type != "duckdb":
        raise ReportError(f"the profile's target is {profile.credentials.type}, not duckdb: this command reads a "
                          "DuckDB file; elsewhere call claude_batch.report.write() with that warehouse")
    return str(profile.credentials.path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claude_batch.report",
        description="Write a static HTML report of one classifier from its state tables: cost against agreement "
                    "or accuracy per configuration, the confusion matrix, label counts over time, what each run cost.")
    parser.add_argument("--classifier", required=True, help="the classifier's name (its dbt model)")
    parser.add_argument("--out", default="claude_batch_report.html", help="the HTML file to write")
    parser.add_argument("--db", help="the DuckDB file (default: the `path` of the dbt project's profile and target)")
    parser.add_argument("--project-dir", default=".", help="the dbt project whose profile names the file (default .)")
    parser.add_argument("--profiles-dir", help="where profiles.yml is (default as dbt: $DBT_PROFILES_DIR, the "
                                               "current directory, ~/.dbt)")
    parser.add_argument("--target", help="the profile's target (default: its own default)")
    parser.add_argument("--state-schema", default="claude_batch", help="schema of the state tables")
    parser.add_argument("--evaluation", help="a relation built with claude_batch_evaluate, e.g. main.review_sentiment_eval")
    parser.add_argument("--confusion", help="a relation built with claude_batch_confusion")
    args = parser.parse_args(argv)
    try:
        db = args.db or profile_database(args.project_dir, args.profiles_dir, args.target)
        with open_database(db, state_schema=args.state_schema) as wh:
            data = write(wh, args.classifier, args.out, evaluation=args.evaluation, confusion=args.confusion)
    except ClaudeBatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = data["totals"]
    print(f"wrote {args.out}: {args.classifier} ({db}), {len(data['versions'])} version(s), {len(data['runs'])} run(s) "
          f"billed {usd(t['billed_usd'])} (naive {usd(t['naive_usd'])}), {len(data['points'])} configuration(s) measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
