"""Sending less text: duplicates once, results reused by version, a lost row recovered alone.

All through pipeline.run on a DuckDB file and the emulator; what was sent is the emulator's own record.
"""

from __future__ import annotations

from collections import Counter

from cost_helpers import batch_requests, classifier, reviews, sent_rows


def test_duplicates_are_sent_once_and_fanned_out_to_every_row(runs, emulator):
    rows = reviews(60, distinct=12)  # every text five times
    runs.add(rows)
    cfg = classifier()
    n, out = runs.settle(cfg)
    assert n == 2  # submit, then collect

    sent = sent_rows(emulator)
    assert sent == Counter({text: 1 for text in {t for _, t in rows}})  # 12 texts, each exactly once
    assert sum(len(r) for r in batch_requests(emulator)) == 12

    by_text: dict[str, list[dict]] = {}
    for row_id, text in rows:
        by_text.setdefault(text, []).append(out[row_id])
    for text, copies in by_text.items():
        assert len(copies) == 5
        assert {c["status"] for c in copies} == {"succeeded"}
        assert len({c["label"] for c in copies}) == 1 and copies[0]["label"] in ("positive", "negative", "neutral")
        assert len({c["custom_id"] for c in copies}) == 1  # one request item answered all five
        # The text's cost is shared by the rows that carry it.
        assert len({c["cost_usd"] for c in copies}) == 1 and copies[0]["cost_usd"] > 0
    assert runs.sql("SELECT count(*) FROM claude_batch.cb_request_items")[0][0] == 12


def test_prompt_change_misses_the_result_cache_same_version_reuses_it(runs, emulator):
    rows = reviews(20)
    runs.add(rows)
    first = classifier("review_sentiment")
    runs.settle(first)
    sent = sent_rows(emulator)
    assert set(sent.values()) == {1} and len(sent) == 20

    # Another dbt model with an identical classifier: same version (model, prompt, schema, params),
    # so the results are reused and nothing is sent.
    twin = classifier("review_sentiment_copy")
    assert twin.version == first.version
    out = runs.run(twin)
    assert sent_rows(emulator) == sent
    assert {r["status"] for r in out.values()} == {"succeeded"}
    assert {r["classifier_version"] for r in out.values()} == {first.version}

    # Settings that do not change the question do not change the version either.
    assert classifier(pack_size=7, max_attempts=5, max_usd_per_run=1).version == first.version
    # The model is part of the version: the same prompt on another model is another question.
    assert classifier(model="claude-sonnet-4-6").version != first.version

    # A prompt change is a new version. Without reclassify the old results stay in use (nothing sent);
    # with reclassify every text is a cache miss and is sent again, once.
    changed_instructions = first.spec.instructions + "\nTreat sarcasm with extra care."
    changed = classifier("review_sentiment", instructions=changed_instructions)
    assert changed.version != first.version
    out = runs.run(changed)
    assert sent_rows(emulator) == sent
    assert {r["classifier_version"] for r in out.values()} == {first.version}

    reclassify = classifier("review_sentiment", instructions=changed_instructions, reclassify=True)
    n, out = runs.settle(reclassify)
    assert sent_rows(emulator) == Counter({text: 2 for text in sent})
    assert {r["classifier_version"] for r in out.values()} == {changed.version}
    assert {r["status"] for r in out.values()} == {"succeeded"}


def test_a_row_missing_from_the_answer_is_resubmitted_alone_and_classified(runs, emulator):
    rows = reviews(10)
    runs.add(rows)
    lost = rows[3][1]
    calls: Counter = Counter()

    def omit_first_time(text, labels, params):
        calls[text] += 1
        if text == lost and calls[text] == 1:
            return {"omit": True}
        return None  # the default answer

    emulator.set_responder(omit_first_time)
    n, out = runs.settle(classifier())
    assert n == 3  # submit; collect (the row is missing) and resubmit it; collect

    requests = batch_requests(emulator)
    assert len(requests) == 2
    assert sorted(requests[0]) == sorted(t for _, t in rows)  # one pack of all ten rows
    assert requests[1] == [lost]  # then the lost row alone
    assert sent_rows(emulator)[lost] == 2 and sum(sent_rows(emulator).values()) == 11

    row = out[rows[3][0]]
    assert row["status"] == "succeeded" and row["label"] in ("positive", "negative", "neutral")
    assert row["attempt"] == 2
    assert {r["status"] for r in out.values()} == {"succeeded"}
    attempts = runs.sql(
        "SELECT i.status, r.item_count FROM claude_batch.cb_results i JOIN claude_batch.cb_requests r "
        "USING (custom_id) WHERE i.text_hash = ? ORDER BY i.attempt", [row["text_hash"]])
    assert attempts == [("missing", 10), ("succeeded", 1)]
