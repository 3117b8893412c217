"""Issue 5 behaviour through real dbt runs: byte/count splits, the processing-queue cap across runs,
and `mode: auto` choosing between the batch and real-time paths."""

from __future__ import annotations

from collections import Counter

import duckdb


def rows(n: int, start: int = 1) -> list[tuple[int, str]]:
    return [(i, f"review {i}: great product, I love it" if i % 2 else f"review {i}: broke, terrible")
            for i in range(start, start + n)]


def received_texts(emulator) -> Counter:
    return Counter(t for rec in emulator.received() for t in rec["rows"])


def test_byte_limit_splits_into_several_batches(project, emulator):
    project.add_reviews(rows(60))
    # ~one request of 5 rows is a few KB (the prefix repeats in each): 5 KB forces several batches.
    project.dbt(vars={"cb_pack_size": 5, "cb_max_batch_bytes": 5_000})
    batches = project.sql("SELECT batch_id, request_count, body_bytes FROM claude_batch.cb_batches")
    assert len(batches) >= 3
    assert all(b[2] <= 5_000 for b in batches)
    assert sum(b[1] for b in batches) == 12
    project.dbt(vars={"cb_pack_size": 5, "cb_max_batch_bytes": 5_000})
    table = project.table()
    assert {r["status"] for r in table.values()} == {"succeeded"}
    assert max(received_texts(emulator).values()) == 1


def test_request_count_limit_splits(project, emulator):
    project.add_reviews(rows(30))
    project.dbt(vars={"cb_pack_size": 2, "cb_max_requests_per_batch": 4})
    counts = [c for (c,) in project.sql("SELECT request_count FROM claude_batch.cb_batches ORDER BY intent_at")]
    assert counts == [4, 4, 4, 3]


def test_queue_cap_is_honoured_across_runs(project, emulator):
    project.add_reviews(rows(50))
    cap = {"cb_pack_size": 5, "cb_queue_cap": 4}
    emulator.pause_worker()  # batches stay in progress: the queue stays full
    project.dbt(vars=cap)
    in_flight = project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE status = 'in_flight'")[0][0]
    assert in_flight == 4
    note = project.sql("SELECT note FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1")[0][0]
    assert "processing-queue cap 4" in note
    project.dbt(vars=cap)  # queue still full: nothing more is sent
    assert project.sql("SELECT count(*) FROM claude_batch.cb_requests")[0][0] == 4
    emulator.resume_worker()
    emulator.wait_idle()
    for _ in range(6):
        project.dbt(vars=cap)
        total = project.sql("SELECT count(*) FROM claude_batch.cb_requests")[0][0]
        assert project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE status = 'in_flight'")[0][0] <= 4
    assert total == 10
    assert {r["status"] for r in project.table().values()} == {"succeeded"}
    assert max(received_texts(emulator).values()) == 1


def test_auto_mode_goes_realtime_for_small_increments(project, emulator):
    auto = {"cb_mode": "auto", "cb_realtime_threshold": 20}
    project.add_reviews(rows(40))
    project.dbt(vars=auto)  # 40 pending >= 20: batch
    modes = project.sql("SELECT DISTINCT mode FROM claude_batch.cb_batches")
    assert modes == [("batch",)]
    project.dbt(vars=auto)
    project.add_reviews(rows(5, start=100))
    project.dbt(vars=auto)  # 5 pending < 20: real time, answered within the run
    table = project.table()
    assert {table[i]["status"] for i in range(100, 105)} == {"succeeded"}
    assert all(table[i]["batch_id"].startswith("rt_") for i in range(100, 105))
    tiers = project.sql("""SELECT DISTINCT service_tier FROM claude_batch.cb_requests r
                           JOIN claude_batch.cb_batches b USING (submission_key) WHERE b.mode = 'realtime'""")
    assert tiers == [("standard",)]


def test_bodies_over_256_mb_split_at_the_api_limit(project, emulator):
    # The real limit, not a small override: 12,500 texts of ~19,400 characters go one to a request
    # (max_pack_chars), so the requests' bodies come to ~267 MB, more than one batch may carry.
    n = 12_500
    con = duckdb.connect(str(project.db))
    try:
        con.execute("CREATE SCHEMA app")
        con.execute("""CREATE TABLE app.reviews AS SELECT CAST(i AS INTEGER) AS id,
                       'review ' || i || ': ' || repeat('good product, would buy again. ', 645) AS body
                       FROM range(1, ? + 1) r(i)""", [n])
    finally:
        con.close()
    project.dbt()
    batches = project.sql("SELECT request_count, body_bytes FROM claude_batch.cb_batches")
    assert len(batches) == 2
    assert all(size <= 256_000_000 for _, size in batches)
    assert sum(size for _, size in batches) > 256_000_000
    assert sum(count for count, _ in batches) == n
    assert emulator.wait_idle(timeout=600)
    project.dbt()
    assert project.sql("SELECT status, count(*) FROM main.review_sentiment GROUP BY 1") == [("succeeded", n)]
    # The emulator saw every text once, across the two bodies.
    sent = Counter(text for rec in emulator.received() for text in rec["rows"])
    assert len(sent) == n and max(sent.values()) == 1
