"""Issue 13, point 3: `reclassify: true` keeps every row's label until its new answer arrives.

Real `dbt build`s (model and its generic tests) against the emulator; the new version's batch is held
in flight by pausing the emulator's worker.
"""

from __future__ import annotations

ROWS = [(1, "I love it, works perfectly"), (2, "Terrible. It broke after two days"), (3, "It arrived on Tuesday."),
        (4, "I love it, works perfectly"), (5, "")]
CHANGED = {"cb_instructions": "Classify the sentiment of each review, carefully."}
# claude_reclassify is the documented var; cb_reclassify is what integration_tests wired before it.
RECLASSIFY = {**CHANGED, "claude_reclassify": True, "cb_reclassify": True}


def classified(project) -> dict:
    project.add_reviews(ROWS)
    project.dbt()
    project.dbt()
    table = project.table()
    assert {table[i]["status"] for i in (1, 2, 3, 4)} == {"succeeded"}
    return table


def failed_tests(result) -> list[str]:
    return [r.node.name for r in result.result if str(r.status) == "fail"]


def test_rows_keep_their_label_and_version_while_the_new_version_is_in_flight(project, emulator):
    before = classified(project)
    v1 = before[1]["classifier_version"]

    emulator.pause_worker()
    project.add_reviews([(6, "Best purchase this year")])  # new during the reclassification: no old label
    for _ in range(2):  # submits the new version's batch; then the batch is still processing
        project.dbt(vars=RECLASSIFY)  # the build's generic tests pass
        table = project.table()
        for i in (1, 2, 3, 4):
            row = table[i]
            assert row["status"] == "reclassifying", row
            assert (row["label"], row["labels"], row["classifier_version"]) == (
                before[i]["label"], before[i]["labels"], v1)
            assert row["classified_at"] == before[i]["classified_at"]
        assert table[5]["status"] == "skipped_empty_text"
        assert table[6]["status"] == "in_flight" and table[6]["label"] is None
    assert project.sql("SELECT count(*) FROM claude_batch.cb_batches WHERE status = 'in_progress'")[0][0] == 1

    emulator.resume_worker()
    assert emulator.wait_idle(30)
    project.dbt(vars=RECLASSIFY)
    table = project.table()
    assert {table[i]["status"] for i in (1, 2, 3, 4, 6)} == {"succeeded"}
    v2 = {table[i]["classifier_version"] for i in (1, 2, 3, 4, 6)}
    assert len(v2) == 1 and v1 not in v2
    assert all(table[i]["label"] for i in (1, 2, 3, 4, 6))


def test_a_failed_new_attempt_that_will_be_retried_keeps_the_old_label(project, emulator):
    before = classified(project)
    emulator.set_faults({"errored_fraction": 1.0})
    project.dbt(vars=RECLASSIFY)  # submits the new version
    assert emulator.wait_idle(30)
    project.dbt(vars=RECLASSIFY)  # collects the errors, sends them again
    assert project.sql("SELECT count(*) FROM claude_batch.cb_results WHERE status = 'errored'")[0][0] == 3
    table = project.table()
    assert [table[i]["status"] for i in (1, 2, 3, 4)] == ["reclassifying"] * 4
    assert [table[i]["label"] for i in (1, 2, 3, 4)] == [before[i]["label"] for i in (1, 2, 3, 4)]
    emulator.set_faults({})
    assert emulator.wait_idle(30)
    project.dbt(vars=RECLASSIFY)
    project.dbt(vars=RECLASSIFY)
    table = project.table()
    assert {table[i]["status"] for i in (1, 2, 3, 4)} == {"succeeded"}
    assert {table[i]["classifier_version"] for i in (1, 2, 3, 4)} != {before[1]["classifier_version"]}


def test_every_row_explained_fails_on_a_table_that_lost_its_labels(project, emulator):
    """The issue's symptom (every row NULL, in_flight, no version, while the state holds their
    answers) must fail the generic test; the same rows shown as reclassifying pass it."""
    classified(project)
    emulator.pause_worker()
    project.dbt(vars=RECLASSIFY)
    project.dbt("test", vars=RECLASSIFY)
    project.sql("UPDATE main.review_sentiment SET status = 'in_flight', label = NULL, labels = NULL, "
                "classifier_version = NULL WHERE id IN (1, 2, 3, 4)")
    result = project.dbt("test", vars=RECLASSIFY, expect_ok=False)
    assert any("every_row_explained" in name for name in failed_tests(result))
    emulator.resume_worker()


def test_every_row_explained_fails_on_a_reclassifying_row_without_its_label(project, emulator):
    classified(project)
    emulator.pause_worker()
    project.dbt(vars=RECLASSIFY)
    project.sql("UPDATE main.review_sentiment SET label = NULL, labels = NULL WHERE id = 2")
    result = project.dbt("test", vars=RECLASSIFY, expect_ok=False)
    assert any("every_row_explained" in name for name in failed_tests(result))
    emulator.resume_worker()
