"""What a run says in dbt's log (issue 13): one line per fact, with the right counts."""

from __future__ import annotations

REVIEWS = [
    (1, "I love it, works perfectly"),
    (2, "Terrible, it broke after a day"),
    (3, "It arrived on Tuesday."),
    (4, "Excellent quality, great value"),
    (5, "Worst purchase ever"),
]


def test_caching_warning_is_printed_once_with_the_runs_request_count(project, emulator):
    """Haiku 5.5's caching minimum is 512 tokens and this prefix is shorter, so the run warns. Five
    texts two a request are three requests (not 5 // 2), and the warning is printed once: not a
    second time through Python's logging (which dbt's tracker configures to print to stderr)."""
    project.add_reviews(REVIEWS)
    proc = project.dbt_cli("run", vars={"cb_pack_size": 2})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = proc.stdout + proc.stderr
    assert said.count("shared prefix is") == 1, said
    (line,) = [ln for ln in said.splitlines() if "shared prefix is" in ln]
    assert "on 3 request(s)" in line or "by 2 request(s)" in line, line
    assert project.sql("SELECT sum(request_count) FROM claude_batch.cb_batches")[0][0] == 3


def test_rows_answered_from_stored_results_are_counted(project, emulator):
    project.add_reviews(REVIEWS[:3])
    project.dbt("run")
    project.dbt("run")
    project.add_reviews([(10, REVIEWS[0][1]), (11, REVIEWS[1][1])])  # texts already classified
    log = project.logged(lambda: project.dbt("run"))
    assert "nothing new to classify: 5 row(s) answered from stored results" in log, log
    assert len([e for e in emulator.received()]) == 1  # the first run's one request, nothing since


def test_rows_on_an_older_version_are_counted_with_how_to_reclassify(project, emulator):
    project.add_reviews(REVIEWS[:3])
    project.dbt("run")
    project.dbt("run")
    changed = {"cb_instructions": "Classify the sentiment of each review, carefully."}
    project.add_reviews([(20, "Love it, great")])
    log = project.logged(lambda: project.dbt("run", vars=changed))
    lines = [ln for ln in log.splitlines() if "older classifier version" in ln]
    assert len(lines) == 1, log
    assert "3 row(s)" in lines[0] and "claude_reclassify: true" in lines[0], lines[0]
    log = project.logged(lambda: project.dbt("run", vars={**changed, "claude_reclassify": True}))
    assert "older classifier version" not in log


def test_submit_progress_counts_the_batches_texts_after_a_preflight(project, emulator):
    """The preflight answers the first request (two texts) in real time; the batches carry the other
    three, and the progress line counts those: 3/3, not 5/3."""
    project.add_reviews(REVIEWS)
    log = project.logged(lambda: project.dbt("run", vars={"cb_pack_size": 2, "cb_preflight": "auto"}))
    progress = [ln for ln in log.splitlines() if "submitting: " in ln]
    assert progress and "submitting: 3/3 text(s)" in progress[-1], progress
    assert "planned" not in log  # texts and requests are said once, in the estimate and the summary
