"""Issue 3's end-to-end behaviour, with real `dbt build` runs against the emulator."""

from __future__ import annotations

from collections import Counter

REVIEWS = [
    (1, "I love it, works perfectly, highly recommend"),
    (2, "Terrible. It broke after two days, I want a refund"),
    (3, "It arrived on Tuesday."),
    (4, "I love it, works perfectly, highly recommend"),  # duplicate text of row 1
    (5, "Excellent quality, great value"),
    (6, "Worst purchase ever, awful and disappointed"),
    (7, ""),
    (8, None),
]


def sent_texts(emulator) -> Counter:
    """Every row text the emulator received, counted (its own record, not ours)."""
    counts: Counter = Counter()
    for rec in emulator.received():
        for text in rec["rows"]:
            counts[text] += 1
    return counts


def statuses(project) -> dict:
    return {k: r["status"] for k, r in project.table().items()}


def test_first_run_submits_second_materialises_third_is_noop(project, emulator):
    project.add_reviews(REVIEWS)
    project.dbt()
    first = project.table()
    assert {first[i]["status"] for i in (1, 2, 3, 4, 5, 6)} == {"in_flight"}
    assert first[7]["status"] == "skipped_empty_text" and first[8]["status"] == "skipped_empty_text"
    sent = sent_texts(emulator)
    assert sum(sent.values()) == 5  # 6 rows, one duplicate text, empty/null never sent
    assert project.sql("SELECT count(*) FROM claude_batch.cb_batches WHERE batch_id IS NOT NULL")[0][0] == 1

    project.dbt()
    second = project.table()
    assert second[1]["label"] == "positive" and second[4]["label"] == "positive"
    assert second[2]["label"] == "negative" and second[6]["label"] == "negative"
    assert {second[i]["status"] for i in (1, 2, 3, 4, 5, 6)} == {"succeeded"}
    assert second[1]["custom_id"] == second[4]["custom_id"]  # one request answered both rows
    assert second[1]["batch_id"].startswith("msgbatch_")

    project.dbt()
    assert sent_texts(emulator) == sent  # nothing new: nothing sent
    assert project.table() == second


def test_added_rows_are_the_only_ones_submitted(project, emulator):
    project.add_reviews(REVIEWS[:3])
    project.dbt()
    project.dbt()
    before = sent_texts(emulator)
    project.add_reviews([(10, "Great phone, love the screen"), (11, "Broke in a week, terrible"),
                         (12, REVIEWS[0][1])])  # 12 repeats a classified text: served from results, not sent
    project.dbt()
    new = sent_texts(emulator) - before
    assert new == Counter({"Great phone, love the screen": 1, "Broke in a week, terrible": 1})
    project.dbt()
    table = project.table()
    assert table[12]["status"] == "succeeded" and table[12]["label"] == "positive"
    assert table[10]["label"] == "positive" and table[11]["label"] == "negative"


def test_a_row_whose_text_changes_to_another_classified_text_gets_its_label(project, emulator):
    # Rows 1 and 2 are answered in the same request, so their results share version, attempt and
    # collection time: only the text tells them apart once row 1 takes row 2's text.
    project.add_reviews(REVIEWS[:2])
    project.dbt()
    project.dbt()
    assert project.table()[1]["label"] == "positive" and project.table()[2]["label"] == "negative"
    sent = sent_texts(emulator)
    project.sql("UPDATE app.reviews SET body = ? WHERE id = 1", [REVIEWS[1][1]])
    project.dbt()
    row = project.table()[1]
    assert row["label"] == "negative" and row["text_hash"] == project.table()[2]["text_hash"]
    assert sent_texts(emulator) == sent  # the new text was classified already: nothing sent


def test_errored_and_expired_rows_are_resubmitted_then_classified(project, emulator):
    rows = [(i, f"review number {i}: great product, love it") for i in range(1, 41)]
    project.add_reviews(rows)
    emulator.set_faults({"errored_fraction": 0.3, "expired_fraction": 0.2})
    project.dbt(vars={"cb_pack_size": 1})
    project.dbt(vars={"cb_pack_size": 1})  # collects: failed rows are resubmitted in the same run
    failed_hashes = {h for (h,) in project.sql(
        "SELECT DISTINCT text_hash FROM claude_batch.cb_results WHERE status IN ('errored', 'expired')")}
    assert failed_hashes, "the fault fractions should have failed some rows"
    failed = {k for k, r in project.table().items() if r["text_hash"] in failed_hashes}
    assert all(project.table()[k]["status"] == "in_flight" for k in failed)
    emulator.set_faults({})
    for _ in range(3):
        project.dbt(vars={"cb_pack_size": 1})
    final = project.table()
    assert {r["status"] for r in final.values()} == {"succeeded"}
    assert all(final[k]["attempt"] >= 2 for k in failed)
    # Errored and expired requests are not billed; every text was billed once.
    billed = project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE billed_usd > 0")[0][0]
    assert billed == 40


def test_out_of_set_answer_is_flagged_not_written(project, emulator):
    project.add_reviews([(1, "I love it"), (2, "This text gets a bogus label")])
    emulator.script({"This text gets a bogus label": {"label": "enthusiastic"}})
    for _ in range(4):
        project.dbt(vars={"cb_max_attempts": 2})
    table = project.table()
    assert table[1]["label"] == "positive"
    bad = table[2]
    assert bad["status"] == "invalid_output" and bad["label"] is None
    assert "enthusiastic" in bad["raw_answer"]
    assert bad["attempt"] == 2  # retried once, alone, then left flagged


def test_dbt_test_passes_then_fails_on_a_planted_bad_label(project, emulator):
    project.add_reviews(REVIEWS)
    project.dbt()
    project.dbt()
    project.dbt("test")
    project.sql("UPDATE main.review_sentiment SET label = 'bogus' WHERE id = 1")
    result = project.dbt("test", expect_ok=False)
    assert not result.success
    failed = [r.node.name for r in result.result if str(r.status) == "fail"]
    assert any("labels_in_set" in name for name in failed)


def test_every_row_explained_fails_when_a_row_is_missing(project, emulator):
    project.add_reviews(REVIEWS)
    project.dbt()
    project.sql("DELETE FROM main.review_sentiment WHERE id = 2")
    result = project.dbt("test", expect_ok=False)
    failed = [r.node.name for r in result.result if str(r.status) == "fail"]
    assert any("every_row_explained" in name for name in failed)


def test_prompt_change_does_not_reclassify_until_asked(project, emulator):
    project.add_reviews(REVIEWS[:3])
    project.dbt()
    project.dbt()
    before = sent_texts(emulator)
    v1 = {r["classifier_version"] for r in project.table().values() if r["status"] == "succeeded"}
    changed = {"cb_instructions": "Classify the sentiment of each review, carefully."}
    project.add_reviews([(20, "Love it, great")])
    project.dbt(vars=changed)
    assert sum((sent_texts(emulator) - before).values()) == 1  # only the new row, under the new version
    project.dbt(vars=changed)
    table = project.table()
    assert {table[i]["classifier_version"] for i in (1, 2, 3)} == v1
    assert table[20]["classifier_version"] not in v1
    project.dbt(vars={**changed, "claude_reclassify": True})
    project.dbt(vars={**changed, "claude_reclassify": True})
    table = project.table()
    assert len({r["classifier_version"] for r in table.values()}) == 1
    assert table[1]["classifier_version"] not in v1


def test_multi_label_with_composite_key_and_template(project, emulator):
    project.add_tickets([
        ("EU", 1, "Refund please", "I was charged twice on my invoice"),
        ("EU", 2, "Late parcel", "The courier delivery is late and the product arrived broken"),
        ("US", 1, "Refund please", "I was charged twice on my invoice"),
    ])
    project.dbt(select="ticket_topics")
    project.dbt(select="ticket_topics")
    table = project.table("ticket_topics", order='region, "ticket no"')
    assert table[("EU", 1)]["labels"] == ["billing"]
    assert set(table[("EU", 2)]["labels"]) >= {"shipping"}
    assert table[("US", 1)]["labels"] == table[("EU", 1)]["labels"]
    assert {r["status"] for r in table.values()} == {"succeeded"}
    project.dbt("test", select="ticket_topics")


def test_dry_run_sends_nothing_and_reports_estimate(project, emulator):
    project.add_reviews(REVIEWS)
    project.dbt(vars={"claude_dry_run": True})
    assert sum(sent_texts(emulator).values()) == 0
    est = project.sql("SELECT estimated_usd, note FROM claude_batch.cb_runs")
    assert est[0][0] > 0 and "dry run" in est[0][1]
