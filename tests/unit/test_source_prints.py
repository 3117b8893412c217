"""A source row's fingerprint is stored only when every row that has it agrees on the text key and the
skip reason (a 64-bit fingerprint two texts share must not hand one text's answer to the other).
Collisions are forced with a coarse fingerprint, and what is stored is checked against a Python
computation of the rule."""

import duckdb

from claude_batch import config as config_mod
from claude_batch import pipeline
from claude_batch.warehouse import DuckDBWarehouse


class _CoarseWarehouse(DuckDBWarehouse):
    def fingerprint_sql(self, *exprs: str) -> str:
        return f"hash({exprs[0]} % 4)"  # ids 1, 5, 9 ... share a fingerprint: collisions on purpose


def test_only_fingerprints_whose_rows_agree_are_stored():
    con = duckdb.connect()
    bodies = {1: "good", 5: "good", 9: "good",  # same text: stored
              2: "bad", 6: "worse",  # two texts: not stored
              3: "", 7: "  ", 11: None,  # all blank (empty_text), different texts: not stored
              4: "x" * 50, 8: "x" * 50, 12: None}  # one text, and a NULL row (no key, one skip reason): stored
    con.execute("CREATE TABLE src (id INTEGER, body VARCHAR)")
    con.executemany("INSERT INTO src VALUES (?, ?)", list(bodies.items()))
    wh = _CoarseWarehouse(con)
    cfg = config_mod.build_config("prints", {"model": "claude-sonnet-5-5"}, key="id", text="body",
                                  instructions="Say how each review feels.", labels={"positive": "", "negative": ""})
    pipe = pipeline.Pipeline(cfg, wh, "src")
    pipe.store.ensure()
    pipe.gather()
    rows = con.execute(f"SELECT id % 4, text_hash, skip_reason FROM {pipeline.ROWS}").fetchall()
    groups: dict[int, tuple[set, set]] = {}
    for fp, text_hash, skip in rows:
        hashes, skips = groups.setdefault(fp, (set(), set()))
        if text_hash is not None:
            hashes.add(text_hash)
        if skip is not None:
            skips.add(skip)
    expected = {(next(iter(h), None), next(iter(s), None)) for h, s in groups.values() if len(h) <= 1 and len(s) <= 1}
    stored = con.execute(f"SELECT text_hash, skip_reason FROM {pipe.store.t['cb_source_prints']}").fetchall()
    assert sorted(map(str, stored)) == sorted(map(str, expected))
    assert len(stored) == 2  # 'good', and 'x' * 50 with the NULL row's skip reason
