"""The source scan of a run hashes (md5) only rows that are new or changed since the last run
(issue 13: on long texts the hashing was most of a nightly no-op run). A changed text must still be
seen, and a change of the settings that shape the text must rehash everything."""

from __future__ import annotations

from collections import Counter

import duckdb

REVIEWS = [(1, "I love it, works perfectly"), (2, "Terrible, it broke"), (3, "It arrived on Tuesday."),
           (4, "I love it, works perfectly")]


def sent(emulator) -> Counter:
    return Counter(t for e in emulator.received() if e.get("batch") not in (None, "messages") for t in e["rows"])


def set_body(project, key: int, body: str) -> None:
    con = duckdb.connect(str(project.db))
    try:
        con.execute("UPDATE app.reviews SET body = ? WHERE id = ?", [body, key])
    finally:
        con.close()


def test_a_noop_run_takes_known_rows_from_their_fingerprints(project, emulator):
    """White box: a row seen before is not hashed again. Its stored text key is what the run uses, so
    a stored key altered on purpose shows in the output (the real key would be recomputed if the
    row were hashed)."""
    project.add_reviews(REVIEWS)
    project.dbt("run")
    project.dbt("run")
    prints = project.sql("SELECT count(*), count(DISTINCT fp) FROM claude_batch.cb_source_prints")[0]
    assert prints == (4, 4)  # one per (key, text)
    fake = "00000000-0000-0000-0000-000000000001"
    con = duckdb.connect(str(project.db))
    try:
        con.execute(f"UPDATE claude_batch.cb_source_prints SET text_hash = '{fake}' "
                    "WHERE text_hash = (SELECT text_hash FROM main.review_sentiment WHERE id = 3)")
    finally:
        con.close()
    project.dbt("run", vars={"claude_dry_run": True})  # dry: the fake key is pending, nothing is sent
    assert str(project.table()[3]["text_hash"]) == fake


def test_a_changed_text_is_seen_and_stale_fingerprints_go(project, emulator):
    project.add_reviews(REVIEWS)
    project.dbt("run")
    project.dbt("run")
    before = project.table()
    set_body(project, 3, "Worst purchase ever, awful")  # same key, new text
    set_body(project, 4, "Broke in a week")             # was a duplicate of row 1's text
    project.dbt("run")
    project.dbt("run")
    after = project.table()
    assert sent(emulator)["Worst purchase ever, awful"] == 1 and sent(emulator)["Broke in a week"] == 1
    assert after[3]["text_hash"] != before[3]["text_hash"] and after[3]["label"] == "negative"
    assert after[4]["text_hash"] != after[1]["text_hash"] and after[4]["label"] == "negative"
    for key in (1, 2):  # untouched (row 1's cost share moved: it no longer shares its text with row 4)
        assert {c: after[key][c] for c in ("label", "status", "text_hash", "custom_id", "classified_at")} == \
               {c: before[key][c] for c in ("label", "status", "text_hash", "custom_id", "classified_at")}
    # One fingerprint per current (key, text): the old texts' ones are gone.
    assert project.sql("SELECT count(*) FROM claude_batch.cb_source_prints")[0][0] == 4


def test_a_text_setting_change_rehashes_every_row(project, emulator):
    """max_text_chars shapes the text sent (and its key): stored fingerprints of the earlier setting
    must not be trusted."""
    long_text = "Great phone, I love it. " * 10  # 240 characters
    project.add_reviews([(1, long_text), (2, "Terrible, it broke")])
    project.dbt("run")
    project.dbt("run")
    assert project.table()[1]["truncated"] is False
    project.dbt("run", vars={"cb_max_text_chars": 100})
    row = project.table()[1]
    assert row["truncated"] is True and row["status"] == "in_flight"
    assert sent(emulator)[long_text[:100]] == 1
