"""The model's output query: every source row with its classification (or why it has none).

``output_sql`` is what ``Pipeline.output_sql`` returns to dbt. On an incremental run it returns only
the rows whose classification changed since the model's table was written, so a nightly run with
nothing new returns nothing; dbt's delete+insert then replaces those keys' rows.

Columns: the key(s), the pass-through ``columns``, then ``config.OUTPUT_COLUMNS``. Three rules shape it:

- **cost**: ``cost_usd`` is everything this classifier was billed for the row's text (every version,
  every attempt) divided by the source rows that carry the text, so the column sums to the classifier's
  bill. A row whose share moved (a row with its text was added or removed, or a new attempt was billed)
  counts as changed, so the incremental table never keeps a stale share.
- **reclassifying**: with ``reclassify: true`` a row whose text succeeded under an older version keeps
  that label and version, with status ``reclassifying``, until the current version's answer is final.
- **pass-through columns** are copied from the source by key, and a changed value rewrites the row.
- **escalation** (``escalate_to``): a row whose text the current version answered ``unsure`` keeps
  that answer with status ``escalating`` while the stronger model's answer is to come, then shows that
  answer (its labels, model, custom_id, attempt) with status ``escalated`` and the classifier's
  version; if the stronger model fails for good, the row keeps the unsure answer (``succeeded``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import statuses
from .state import RETRYABLE_STATUSES
from .warehouse import quote_literal as _lit

if TYPE_CHECKING:
    from .config import ClassifierConfig
    from .state import StateStore
    from .warehouse import Warehouse

LABELLED_STATUSES = statuses.LABELLED  # the statuses whose rows carry a label
# A stored share equal to the current one within this relative error is unchanged: sums of doubles
# may come out in another order (last bits), while a real change (a new row on the text, a new billed
# attempt) moves a share by far more.
COST_REL_TOLERANCE = 1e-12


def output_sql(*, cfg: "ClassifierConfig", wh: "Warehouse", store: "StateStore", rows_table: str,
               per_version: str, source_sql: str, this_sql: str | None, warn=None,
               escalation: "ClassifierConfig | None" = None) -> str:
    """``rows_table``: this run's source rows (keys, text_hash, truncated, skip_reason); ``per_version``:
    SQL of ``store.per_version_sql(accepted versions)``; ``this_sql``: the model's table on an
    incremental run, else None; ``escalation``: the classifier that answers unsure rows again."""
    accepted = store.accepted_versions(cfg.name, cfg.version, cfg.reclassify)
    key_cols = [wh.q(k) for k in cfg.key_columns]
    t = store.t
    cols = "rid, status, error_type, version, attempt, collected_at"
    if len(accepted) == 1:
        win = f"SELECT text_hash, {cols}, attempts_naive_usd AS naive_usd FROM ({per_version}) p"
    else:
        # The result that counts per text: a success if any accepted version has one, else the
        # current version's; between successes, the newest version.
        rank = " ".join(f"WHEN {_lit(v)} THEN {i}" for i, v in enumerate(accepted))
        order = f"(CAST(status <> 'succeeded' AS BIGINT) * 1000000 + CASE version {rank} END)"
        picks = ", ".join(f"{wh.arg_min_sql(c, order)} AS {c}" for c in cols.split(", "))
        win = (f"SELECT text_hash, {picks}, {wh.arg_min_sql('attempts_naive_usd', order)} AS naive_usd "
               f"FROM ({per_version}) p GROUP BY text_hash")

    ctes = [
        f"win AS ({win})",
        f"busy AS ({store.busy_sql(cfg.version)})",
        # What this classifier was billed per text, over every version and attempt (results reused
        # from another classifier of the same version cost this one nothing).
        f"""spent AS (SELECT text_hash, sum(billed_usd) AS billed_usd FROM {t['cb_results']}
                      WHERE classifier = {_lit(cfg.name)} GROUP BY text_hash)""",
        # Each text's share per row: its bill over the source rows that carry it (one join per row).
        f"""share AS (SELECT sh.text_hash, sp.billed_usd / sh.n AS cost_usd
                      FROM (SELECT text_hash, count(*) AS n FROM {rows_table}
                            WHERE skip_reason IS NULL GROUP BY text_hash) sh
                      JOIN spent sp ON sp.text_hash = sh.text_hash)""",
    ]
    keys_s = ", ".join(f"s.{c}" for c in key_cols)
    pass_cols = [wh.q(c) for c in cfg.columns]
    pass_s = "".join(f", pt.{c}" for c in pass_cols)
    pass_join = ""
    if pass_cols:
        # One row per key (min: deterministic when a key is not unique, so such rows do not flap).
        ctes.append(f"""passthru AS (SELECT {", ".join(key_cols)}, {", ".join(f"min({c}) AS {c}" for c in pass_cols)}
                        FROM {source_sql} src GROUP BY {", ".join(key_cols)})""")
        pass_join = "LEFT JOIN passthru pt ON " + " AND ".join(f"pt.{c} = s.{c}" for c in key_cols)

    status = """CASE WHEN s.skip_reason IS NOT NULL THEN 'skipped_' || s.skip_reason
                     WHEN w.status IS NOT NULL AND NOT (b.text_hash IS NOT NULL AND w.status <> 'succeeded') THEN w.status
                     WHEN b.text_hash IS NOT NULL THEN 'in_flight'
                     ELSE 'pending' END"""
    prior_join, prior_cols = "", "NULL AS p_rid, NULL AS p_version, NULL AS p_attempt, NULL AS p_collected_at, NULL AS p_naive_usd"
    older = [v for v in store.accepted_versions(cfg.name, cfg.version, False) if v != cfg.version] \
        if cfg.reclassify else []
    if older:
        # The label a row had before the reclassification: its text's success under the newest
        # older version of this classifier.
        rank = " ".join(f"WHEN {_lit(v)} THEN {i}" for i, v in enumerate(older))
        picks = ", ".join(f"{wh.arg_min_sql(c, 'o_rank')} AS {c}" for c in ("rid", "version", "attempt", "collected_at"))
        ctes.append(f"""prior AS (
            SELECT text_hash, {picks}, {wh.arg_min_sql('attempts_naive_usd', 'o_rank')} AS naive_usd
            FROM (SELECT *, CASE version {rank} END AS o_rank FROM ({store.per_version_sql(older)}) q
                  WHERE status = 'succeeded') p
            GROUP BY text_hash)""")
        prior_join = "LEFT JOIN prior p ON p.text_hash = s.text_hash AND s.skip_reason IS NULL"
        prior_cols = ("p.rid AS p_rid, p.version AS p_version, p.attempt AS p_attempt, "
                      "p.collected_at AS p_collected_at, p.naive_usd AS p_naive_usd")
    retryable = ", ".join(_lit(s) for s in RETRYABLE_STATUSES)
    esc_join, esc_cols = "", ("NULL AS e_rid, NULL AS e_status, NULL AS e_error_type, NULL AS e_attempt, "
                              "NULL AS e_collected_at, NULL AS e_naive_usd, NULL AS e_busy")
    if escalation is not None:
        # The current version's unsure answers, and what the stronger model's version has for them.
        ctes.append(f"""esc AS (
            SELECT u.text_hash, e.rid, e.status, e.error_type, e.attempt, e.collected_at, e.attempts_naive_usd AS naive_usd,
                   eb.text_hash IS NOT NULL AS busy
            FROM (SELECT DISTINCT text_hash FROM ({store.unsure_sql(cfg.version, per_version)}) q) u
            LEFT JOIN ({store.per_version_sql([escalation.version])}) e ON e.text_hash = u.text_hash
            LEFT JOIN ({store.busy_sql(escalation.version)}) eb ON eb.text_hash = u.text_hash)""")
        esc_join = (f"LEFT JOIN esc e ON e.text_hash = s.text_hash AND s.skip_reason IS NULL "
                    f"AND w.version = {_lit(cfg.version)} AND w.status = 'succeeded'")
        esc_cols = ("e.rid AS e_rid, e.status AS e_status, e.error_type AS e_error_type, e.attempt AS e_attempt, "
                    "e.collected_at AS e_collected_at, e.naive_usd AS e_naive_usd, e.busy AS e_busy")
    # escalating: no usable answer of the stronger model yet (none, in flight, or a failure sent again).
    esc_state = f"""CASE WHEN e_busy IS NULL THEN NULL
                         WHEN e_status = 'succeeded' THEN 'escalated'
                         WHEN e_busy OR e_status IS NULL
                              OR (e_status IN ({retryable}) AND coalesce(e_error_type, '') <> 'invalid_request_error'
                                  AND e_attempt < {int(cfg.max_attempts)}) THEN 'escalating' END"""
    # The current version's answer is still to come: none yet, in flight, or a failure that will be
    # sent again (as StateStore.done_sql decides).
    awaiting = f"""(status IN ('in_flight', 'pending')
                    OR (w_status IN ({retryable}) AND coalesce(w_error_type, '') <> 'invalid_request_error'
                        AND w_version = {_lit(cfg.version)} AND w_attempt < {int(cfg.max_attempts)}))"""
    keys_x = ", ".join(f"x.{c}" for c in key_cols)
    pass_x = "".join(f", x.{c}" for c in pass_cols)
    narrow = f"""
        SELECT {keys_x}{pass_x}, x.text_hash, x.truncated, x.cost_usd, x.busy_custom_id,
               CASE WHEN x.reclassifying THEN x.p_rid WHEN x.esc = 'escalated' THEN x.e_rid ELSE x.w_rid END AS rid,
               CASE WHEN x.reclassifying THEN x.p_version ELSE x.w_version END AS version,
               CASE WHEN x.reclassifying THEN x.p_attempt WHEN x.esc = 'escalated' THEN x.e_attempt
                    ELSE x.w_attempt END AS attempt,
               CASE WHEN x.reclassifying THEN x.p_collected_at WHEN x.esc = 'escalated' THEN x.e_collected_at
                    ELSE x.w_collected_at END AS collected_at,
               CASE WHEN x.reclassifying THEN x.p_naive_usd WHEN x.esc = 'escalated' THEN x.w_naive_usd + x.e_naive_usd
                    ELSE x.w_naive_usd END AS naive_usd,
               CASE WHEN x.reclassifying THEN 'reclassifying' ELSE coalesce(x.esc, x.status) END AS status
        FROM (
            SELECT y.*, y.p_rid IS NOT NULL AND {awaiting} AS reclassifying, {esc_state} AS esc
            FROM (
                SELECT {keys_s}{pass_s}, s.text_hash, s.truncated, w.rid AS w_rid, w.status AS w_status,
                       w.error_type AS w_error_type, w.version AS w_version, w.attempt AS w_attempt,
                       w.collected_at AS w_collected_at, w.naive_usd AS w_naive_usd,
                       b.custom_id AS busy_custom_id, sh.cost_usd, {prior_cols}, {esc_cols},
                       {status} AS status
                FROM {rows_table} s
                LEFT JOIN win w ON w.text_hash = s.text_hash AND s.skip_reason IS NULL
                LEFT JOIN busy b ON b.text_hash = s.text_hash AND s.skip_reason IS NULL
                LEFT JOIN share sh ON sh.text_hash = s.text_hash AND s.skip_reason IS NULL
                {prior_join}
                {esc_join}
                {pass_join}
                WHERE s.skip_reason IS DISTINCT FROM 'null_key'
            ) y
        ) x
    """
    if this_sql is not None:
        # Only keys whose row changed: the incremental model keeps the rest. A row is unchanged when
        # the table has a row with its key, text and state: a result is identified by (text, version,
        # attempt, collected_at), a row in flight by its custom_id (a row whose text changed to another
        # collected with the same batch differs by text alone); and with its cost share and
        # pass-through values. Every row of a changed key is returned (delete+insert replaces a key's
        # rows together).
        key_eq = " AND ".join(f"o.{c} = a.{c}" for c in key_cols)
        same = f"""o.text_hash IS NOT DISTINCT FROM a.text_hash
            AND o.status IS NOT DISTINCT FROM a.status
            AND o.classifier_version IS NOT DISTINCT FROM a.version
            AND o.attempt IS NOT DISTINCT FROM a.attempt
            AND o.classified_at IS NOT DISTINCT FROM a.collected_at
            AND (a.rid IS NOT NULL OR o.custom_id IS NOT DISTINCT FROM a.busy_custom_id)
            AND coalesce(abs(o.cost_usd - a.cost_usd) <= {COST_REL_TOLERANCE} * abs(a.cost_usd),
                         o.cost_usd IS NOT DISTINCT FROM a.cost_usd)"""
        if pass_cols:
            present = set(wh.columns_of(this_sql))
            missing = [c for c in cfg.columns if c not in present]
            if missing and warn is not None:
                # Not compared (the table has no such column); rewriting every row now would be
                # thrown away where dbt ignores new columns (its default), every run.
                warn(f"setting 'columns': {missing} not in the existing table {this_sql} yet. With "
                     "on_schema_change='append_new_columns' dbt adds them in this run and the next run fills "
                     "every row; otherwise dbt keeps the table's columns: run once with --full-refresh")
            same += "".join(f"\n            AND o.{wh.q(c)} IS NOT DISTINCT FROM a.{wh.q(c)}"
                            for c in cfg.columns if c in present)
        in_changed = " AND ".join(f"c.{col} = a.{col}" for col in key_cols)
        keys_a = ", ".join(f"a.{c}" for c in key_cols)
        ctes.append(wh.materialized_cte("everything", narrow))
        # Two steps, so the nightly no-op stays one equi-join: candidates are the keys with a row that
        # the table row of its key does not match (a plain LEFT JOIN on the key); only for those (a
        # key on several rows pairs each row with every table row of its key) is "some table row
        # matches" checked exactly. One correlated NOT EXISTS over every row made DuckDB group all of
        # them by every compared column first.
        ctes.append(wh.materialized_cte("candidates", f"""
                SELECT DISTINCT {keys_a} FROM everything a LEFT JOIN {this_sql} o ON {key_eq}
                WHERE NOT coalesce({same}, false)"""))
        ctes.append(f"""changed AS (
                SELECT DISTINCT {keys_a} FROM everything a
                WHERE EXISTS (SELECT 1 FROM candidates c WHERE {in_changed})
                  AND NOT EXISTS (SELECT 1 FROM {this_sql} o WHERE {key_eq} AND {same}))""")
        narrow = f"SELECT a.* FROM everything a WHERE EXISTS (SELECT 1 FROM changed c WHERE {in_changed})"
    ctes.append(f"n AS ({narrow})")

    labelled = ", ".join(_lit(s) for s in LABELLED_STATUSES)
    label_expr = "r.labels" if cfg.spec.multi_label else f"CASE WHEN n.status IN ({labelled}) THEN {wh.list_first_sql('r.labels')} END"
    keys_n = ", ".join(f"n.{c}" for c in key_cols)
    pass_n = "".join(f", n.{c}" for c in pass_cols)
    with_ctes = ",\n        ".join(ctes)
    return f"""
        WITH {with_ctes}
        SELECT {keys_n}{pass_n},
               {label_expr} AS label,
               CASE WHEN n.status IN ({labelled}) THEN r.labels END AS labels,
               n.status, r.error_type, r.error_message, r.raw_answer,
               {_lit(cfg.name)} AS classifier, n.version AS classifier_version, r.model,
               coalesce(r.custom_id, n.busy_custom_id) AS custom_id, r.batch_id, n.attempt,
               n.text_hash, n.truncated,
               n.cost_usd, n.naive_usd AS naive_usd,
               n.collected_at AS classified_at
        FROM n
        LEFT JOIN {t['cb_results']} r ON {wh.row_id_sql("r")} = n.rid
    """
