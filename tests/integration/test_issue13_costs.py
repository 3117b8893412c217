"""Issue 13, point 1: `cost_usd` over the model's table sums to what the classifier was billed,
whatever happens between the builds (real `dbt build`s: the table is merged incrementally by dbt).

The bill is the classifier's own requests (`cb_requests.billed_usd`), read straight from the state;
the table is read straight from DuckDB after each build.
"""

from __future__ import annotations

import pytest


def billed(project, classifier: str = "review_sentiment") -> float:
    return project.sql("SELECT coalesce(sum(billed_usd), 0) FROM claude_batch.cb_requests WHERE classifier = ?",
                       [classifier])[0][0]


def table_cost(project) -> float:
    return project.sql("SELECT coalesce(sum(cost_usd), 0) FROM main.review_sentiment")[0][0]


def assert_table_sums_to_the_bill(project) -> None:
    total = billed(project)
    assert total > 0
    assert table_cost(project) == pytest.approx(total, rel=1e-9, abs=0)


def test_a_row_added_with_an_already_billed_text_shares_its_cost(project, emulator):
    """The issue's case: "x" classified, a second row "x" added: the first row gives up half."""
    project.add_reviews([(1, "x")])
    project.dbt()
    project.dbt()
    assert project.table()[1]["status"] == "succeeded"
    assert_table_sums_to_the_bill(project)
    alone = project.table()[1]["cost_usd"]

    project.add_reviews([(2, "x")])
    project.dbt()
    table = project.table()
    assert table[1]["cost_usd"] == pytest.approx(alone / 2) == table[2]["cost_usd"]
    assert_table_sums_to_the_bill(project)

    # Row 2 moves to a new text: row 1 carries all of "x" again, row 2 the new text's bill.
    project.sql("UPDATE app.reviews SET body = 'Broke after a week, want a refund' WHERE id = 2")
    project.dbt()
    project.dbt()
    table = project.table()
    assert table[2]["status"] == "succeeded"
    assert table[1]["cost_usd"] == pytest.approx(alone)
    assert_table_sums_to_the_bill(project)

    # A third copy of "x" while the others are untouched: thirds, still the bill.
    project.add_reviews([(3, "x")])
    project.dbt()
    table = project.table()
    assert table[1]["cost_usd"] == pytest.approx(alone / 2) == table[3]["cost_usd"]
    assert_table_sums_to_the_bill(project)


def test_billed_retries_and_a_reclassification_are_all_in_the_table(project, emulator):
    """Attempts that were billed (an answer outside the label set is billed, then sent again) and a
    text's earlier version (reclassify sends it again, under the new prompt) are part of the bill."""
    project.add_reviews([(1, "I love it"), (2, "Gets a bogus label"), (3, "It broke")])
    emulator.script({"Gets a bogus label": {"label": "enthusiastic"}})
    for _ in range(3):
        project.dbt(vars={"cb_max_attempts": 2})
    table = project.table()
    assert table[2]["status"] == "invalid_output" and table[2]["attempt"] == 2
    assert project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE billed_usd > 0")[0][0] == 2
    assert_table_sums_to_the_bill(project)

    project.add_reviews([(4, "Gets a bogus label")])  # shares the text billed twice
    project.dbt(vars={"cb_max_attempts": 2})
    assert_table_sums_to_the_bill(project)

    emulator.clear_script()
    changed = {"cb_instructions": "Classify the sentiment of each review, carefully.", "claude_reclassify": True,
               "cb_reclassify": True}  # the documented var, and the one integration_tests wired before it
    project.dbt(vars=changed)
    project.dbt(vars=changed)
    table = project.table()
    assert {r["status"] for r in table.values()} == {"succeeded"}
    assert len({r["classifier_version"] for r in table.values()}) == 1
    assert_table_sums_to_the_bill(project)  # both versions' bills
