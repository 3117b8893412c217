"""`max_rows_per_run` (documented in README's configuration reference, issue 13): at most that many
distinct texts are sent per run; the rest wait for later runs; its value is in `settings_json`."""

from __future__ import annotations

import json

import duckdb

from claude_batch import config, pipeline
from claude_batch.warehouse import Warehouse

TEXTS = ["I love it", "It broke", "It arrived.", "Great value", "Awful, a refund please"]


def test_at_most_max_rows_per_run_texts_are_sent_per_run(tmp_path, emulator):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA app")
    con.execute("CREATE TABLE app.reviews (id INTEGER, body VARCHAR)")
    # Six rows, five texts: the cap counts texts (row 6 repeats row 1's text).
    con.executemany("INSERT INTO app.reviews VALUES (?, ?)", [*enumerate(TEXTS, 1), (6, TEXTS[0])])
    cfg = config.build_config("reviews_capped", {"max_rows_per_run": 2, "preflight": "never"}, key="id", text="body",
                              labels=["positive", "negative", "neutral"], instructions="Sentiment.")
    client = emulator.client()
    sent = []
    for _ in range(3):
        pipeline.run(cfg, Warehouse(con), "app.reviews", client=client)
        assert emulator.wait_idle(30)
        sent.append(sum(len(e["rows"]) for e in emulator.received()))
    assert sent == [2, 4, 5]
    (settings,) = con.execute("SELECT settings_json FROM claude_batch.cb_versions").fetchone()
    assert json.loads(settings)["max_rows_per_run"] == 2
