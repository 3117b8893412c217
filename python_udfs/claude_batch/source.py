"""The source side in SQL: render each row's text, hash it, and say why a row is skipped.

Everything here is one SQL expression over the user's relation, so a million rows are rendered
and hashed by the warehouse, not by Python.
"""

from __future__ import annotations

import re
from typing import Sequence

from .config import ClassifierConfig, ConfigError
from .warehouse import Warehouse, quote_literal

_FIELD_RE = re.compile(r"\{([^{}]+)\}")
# A text that is only whitespace or NUL characters is empty (a SQL string literal of a regex).
BLANK_RE = "'^[\\s\\x00]*$'"


def relation_sql(source) -> str:
    """SQL for what the model passed as its source: a dbt.ref()/dbt.source() relation or a table name."""
    if isinstance(source, str):
        return source
    sql_query = getattr(source, "sql_query", None)
    if callable(sql_query):
        return f"({sql_query()})"
    raise ConfigError(f"setting 'source' must be dbt.ref(...), dbt.source(...) or a table name, got {type(source).__name__}")


def check_columns(wh: Warehouse, source_sql: str, cfg: ClassifierConfig) -> None:
    """Fail at the start, naming the setting, when a key, text or pass-through column does not exist."""
    present = wh.columns_of(source_sql)
    for col in cfg.key_columns:
        if col not in present:
            raise ConfigError(f"setting 'key': column {col!r} is not in the source (columns: {present})")
    setting = "text" if cfg.text_column else "text_template"
    for col in cfg.text_columns:
        if col not in present:
            raise ConfigError(f"setting {setting!r}: column {col!r} is not in the source (columns: {present})")
    for col in cfg.columns:
        if col not in present:
            raise ConfigError(f"setting 'columns': column {col!r} is not in the source (columns: {present})")


def text_expr(wh: Warehouse, cfg: ClassifierConfig) -> str:
    if cfg.text_column:
        return wh.text_sql(wh.q(cfg.text_column))
    parts: list[str] = []
    pos = 0
    template = cfg.text_template or ""
    for match in _FIELD_RE.finditer(template):
        if match.start() > pos:
            parts.append(quote_literal(template[pos:match.start()]))
        parts.append(f"coalesce({wh.text_sql(wh.q(match.group(1)))}, '')")
        pos = match.end()
    if pos < len(template):
        parts.append(quote_literal(template[pos:]))
    return "concat(" + ", ".join(parts) + ")"


def blank_expr(wh: Warehouse, cfg: ClassifierConfig) -> str:
    """True when there is nothing to classify: every text column null or whitespace."""
    checks = [
        f"({wh.q(c)} IS NULL OR {wh.regexp_matches_sql(wh.text_sql(wh.q(c)), BLANK_RE)})" for c in cfg.text_columns
    ]
    return " AND ".join(checks) if checks else "TRUE"


def rows_sql(wh: Warehouse, source_sql: str, cfg: ClassifierConfig) -> str:
    """One row per source row: keys, the text to send, its hash, and why it is skipped (or NULL)."""
    keys = ", ".join(wh.q(k) for k in cfg.key_columns)
    raw = text_expr(wh, cfg)
    limit = int(cfg.max_text_chars)
    null_key = " OR ".join(f"{wh.q(k)} IS NULL" for k in cfg.key_columns)
    # over_limit is computed where raw_text is in scope; a skipped text is not "truncated".
    if cfg.on_too_long == "truncate":
        text = f"CASE WHEN length(raw_text) > {limit} THEN left(raw_text, {limit}) ELSE raw_text END"
        too_long, truncated = "NULL", "over_limit"
    else:
        text = "raw_text"
        too_long, truncated = "CASE WHEN over_limit THEN 'too_long' END", "false"
    return f"""
        SELECT {keys}, text, {wh.hash_sql('text')} AS text_hash, {truncated} AS truncated,
               CASE WHEN {null_key} THEN 'null_key'
                    WHEN is_blank THEN 'empty_text'
                    ELSE {too_long} END AS skip_reason
        FROM (
            SELECT {keys}, {text} AS text, length(raw_text) > {limit} AS over_limit, is_blank
            FROM (SELECT {keys}, {raw} AS raw_text, {blank_expr(wh, cfg)} AS is_blank FROM {source_sql}) r
        ) t
    """


def key_list(wh: Warehouse, cols: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + wh.q(c) for c in cols)


# Bump when what a row's text key, truncation or skip reason is computed from changes (rows_sql):
# fingerprints stored by an older scan are then not trusted, and every row is hashed again once.
SCAN_FORMAT = 1


def scan_signature(wh: Warehouse, cfg: ClassifierConfig) -> str:
    """What a source row's text key, truncation and skip reason depend on, besides its key and raw text."""
    import hashlib
    import json

    parts = [SCAN_FORMAT, wh.TEXT_KEY_SCHEME, list(cfg.key_columns), cfg.text_column, cfg.text_template,
             int(cfg.max_text_chars), cfg.on_too_long]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _fingerprint(wh: Warehouse, cfg: ClassifierConfig, alias: str) -> str:
    return wh.fingerprint_sql(*[f"{alias}.{wh.q(k)}" for k in cfg.key_columns], f"{alias}.cb__raw")


def fingerprint_sum_sql(wh: Warehouse, source_sql: str, cfg: ClassifierConfig) -> str:
    """(rows, sum of ``scan_sql``'s ``fp``) over the source: tells whether any row was added, removed or
    had its key or text changed since a run that stored the same figures (noop.py)."""
    return (f"SELECT count(*), sum({_fingerprint(wh, cfg, 's1')}) "
            f"FROM (SELECT src.*, {text_expr(wh, cfg)} AS cb__raw FROM {source_sql} src) s1")


def scan_sql(wh: Warehouse, source_sql: str, cfg: ClassifierConfig, prints_sql: str) -> str:
    """``rows_sql``'s rows (keys, text, text_hash, truncated, skip_reason), plus ``fp`` and ``known``,
    computing the expensive parts only for rows that are new or changed.

    ``fp`` fingerprints the key and the raw text (``wh.fingerprint_sql``: 64-bit, several times faster
    than the md5 text key on long texts); ``prints_sql`` yields (fp, text_hash, truncated, skip_reason)
    stored by earlier runs, one row per fp. A row whose fingerprint is known takes those (``known``);
    the others are rendered, checked and hashed as ``rows_sql`` does (a CASE branch is only evaluated
    for the rows that take it). The raw text is read for every row, so a changed text is seen; it goes
    unseen only if the new text has the old one's 64-bit hash too. ``text`` is cut from the raw text by
    the (stored or computed) ``truncated`` flag, so a known row needs no length computation either.
    """
    keys = [wh.q(k) for k in cfg.key_columns]
    limit = int(cfg.max_text_chars)
    null_key = " OR ".join(f"s.{k} IS NULL" for k in keys)
    blank = " AND ".join(
        f"(s.{wh.q(c)} IS NULL OR {wh.regexp_matches_sql(wh.text_sql('s.' + wh.q(c)), BLANK_RE)})"
        for c in cfg.text_columns) or "TRUE"
    over = f"length(s.cb__raw) > {limit}"
    if cfg.on_too_long == "truncate":
        truncated, too_long = over, "NULL"
    else:
        truncated, too_long = "false", f"CASE WHEN {over} THEN 'too_long' END"
    skip = f"CASE WHEN {null_key} THEN 'null_key' WHEN {blank} THEN 'empty_text' ELSE {too_long} END"
    fresh_text = f"CASE WHEN {truncated} THEN left(s.cb__raw, {limit}) ELSE s.cb__raw END"
    fp = _fingerprint(wh, cfg, "s1")
    return f"""
        SELECT {", ".join(keys)}, fp, known,
               CASE WHEN truncated THEN left(raw_text, {limit}) ELSE raw_text END AS text,
               text_hash, truncated, skip_reason
        FROM (
            SELECT {", ".join(f"s.{k}" for k in keys)}, s.cb__fp AS fp, k.fp IS NOT NULL AS known,
                   s.cb__raw AS raw_text,
                   CASE WHEN k.fp IS NOT NULL THEN k.text_hash ELSE {wh.hash_sql(fresh_text)} END AS text_hash,
                   CASE WHEN k.fp IS NOT NULL THEN k.truncated ELSE {truncated} END AS truncated,
                   CASE WHEN k.fp IS NOT NULL THEN k.skip_reason ELSE {skip} END AS skip_reason
            FROM (SELECT s1.*, {fp} AS cb__fp
                  FROM (SELECT src.*, {text_expr(wh, cfg)} AS cb__raw FROM {source_sql} src) s1) s
            LEFT JOIN ({prints_sql}) k ON k.fp = s.cb__fp
        ) r
    """
