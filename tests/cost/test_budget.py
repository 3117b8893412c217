"""The estimate before sending: budget guard (real dbt runs), dry run, and count_tokens calibration."""

from __future__ import annotations

import math

from claude_batch import cost, estimate, packing, prompts
from claude_batch.packing import PendingText
from cost_helpers import classifier, reviews, sent_rows


def test_budget_guard_stops_at_the_budget_and_later_runs_finish(project, emulator):
    rows = reviews(100)
    project.add_reviews(rows)
    base = {"cb_pack_size": 10}  # 10 requests

    project.dbt("run", vars={**base, "claude_dry_run": True})
    assert emulator.received() == []  # a dry run sends nothing
    (full,) = project.sql("SELECT estimated_usd FROM claude_batch.cb_runs WHERE dry_run")[0]
    assert full > 0
    budget = round(full * 0.35, 6)  # about three requests a run

    for _ in range(8):
        project.dbt("run", vars={**base, "cb_max_usd_per_run": budget})
        if {r["status"] for r in project.table().values()} == {"succeeded"}:
            break
    else:
        raise AssertionError("budget-limited runs did not finish the table")

    runs = project.dicts("SELECT * FROM claude_batch.cb_runs WHERE NOT dry_run ORDER BY started_at")
    submitting = [r for r in runs if r["submitted_texts"]]
    assert len(submitting) >= 3  # the work was spread over several runs
    first = runs[0]
    assert 0 < first["submitted_texts"] < first["pending_texts"] == 100
    assert "budget" in (first["note"] or "")
    for run in runs:
        assert run["estimated_usd"] <= budget + 1e-12, run
    assert sum(r["submitted_texts"] for r in runs) == 100
    assert sent_rows(emulator) == {text: 1 for _, text in rows}  # nothing sent twice, nothing lost

    # The estimate is an upper bound of what each run's submissions were billed.
    billed = dict(project.sql(
        "SELECT b.run_id, sum(r.billed_usd) FROM claude_batch.cb_batches b "
        "JOIN claude_batch.cb_requests r USING (submission_key) GROUP BY b.run_id"))
    for run in submitting:
        assert 0 < billed[run["run_id"]] <= run["estimated_usd"]


def _last_run(runs) -> dict:
    return runs.dicts("SELECT * FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1")[0]


def _count_tokens_calls(emulator) -> int:
    return emulator.stats()["calls"].get("POST /v1/messages/count_tokens", 0)


_LONG = ["unbelievably", "disappointing", "extraordinarily", "comfortable", "headphones", "manufacturer",
         "unresponsive", "recommendation", "performance", "craftsmanship", "wonderful", "customer"]


def wordy_reviews(n: int) -> list[tuple[int, str]]:
    """Rows of long words: about 3.7 characters a token, where the local estimate assumes 3."""
    return [(i + 1, " ".join(_LONG[(i * k + 3 * k) % len(_LONG)] for k in range(1, 7)).capitalize()
             + f", reference {1000 + i}.") for i in range(n)]


def test_count_tokens_api_calibrates_the_estimate(runs, emulator):
    rows = wordy_reviews(120)
    runs.add(rows)

    runs.run(classifier(dry_run=True))  # the default: local estimate, nothing asked
    local = _last_run(runs)
    assert _count_tokens_calls(emulator) == 0

    runs.run(classifier(dry_run=True, count_tokens_api=True))
    calibrated = _last_run(runs)
    assert _count_tokens_calls(emulator) == 2  # the prefix alone, and one sample request
    assert "calibrated with count_tokens" in calibrated["note"]
    assert emulator.received() == []  # dry runs: no request sent
    assert calibrated["pending_texts"] == local["pending_texts"] == 120
    # The local estimate counts these rows at 3 characters a token, too many; calibrated, fewer.
    assert 0 < calibrated["estimated_usd"] < local["estimated_usd"]

    # Calibrated input tokens against what the emulator then counted, request by request.
    cfg = classifier(count_tokens_api=True)
    n, _ = runs.settle(cfg)
    assert n == 2
    requests = runs.dicts(
        "SELECT r.custom_id, r.item_count, r.input_tokens + r.cache_read_tokens + r.cache_write_5m_tokens "
        "+ r.cache_write_1h_tokens AS total_in, r.billed_usd, sum(i.row_chars) AS chars "
        "FROM claude_batch.cb_requests r JOIN claude_batch.cb_request_items i USING (custom_id) GROUP BY ALL")
    items = [PendingText(f"h{i}", text, 1, 1, False) for i, (_, text) in enumerate(rows)]
    sample = packing.PlannedRequest(custom_id="", attempt=1,
                                    items=[(i + 1, it, len(it.text)) for i, it in enumerate(items[: cfg.pack_size])])
    local_prefix = cost.prefix_tokens(prompts.build_params(cfg.spec, [(1, "")], cache=False))
    cal = estimate.calibrate(emulator.client(), cfg.spec, sample.rows(), cached=True, local_prefix=local_prefix)
    for r in requests:
        guess = cal.prefix_tokens + cal.rows_tokens(int(r["chars"]), r["item_count"])
        assert abs(guess - r["total_in"]) <= 0.02 * r["total_in"], (guess, r)
        crude = local_prefix + estimate.local(local_prefix).rows_tokens(int(r["chars"]), r["item_count"])
        assert abs(guess - r["total_in"]) < abs(crude - r["total_in"])
    billed = sum(r["billed_usd"] for r in requests)
    (submitted,) = runs.dicts("SELECT * FROM claude_batch.cb_runs WHERE submitted_texts > 0 AND NOT dry_run")
    assert billed <= submitted["estimated_usd"]
    assert math.isclose(submitted["estimated_usd"], calibrated["estimated_usd"], rel_tol=1e-9)


def test_count_tokens_failure_falls_back_to_the_local_estimate(runs, emulator):
    runs.add(reviews(30))
    runs.run(classifier(dry_run=True))
    local = _last_run(runs)
    emulator.set_faults({"http_errors": [{"status": 400, "count": 5, "path_prefix": "/v1/messages/count_tokens"}]})
    runs.run(classifier(dry_run=True, count_tokens_api=True))
    fallback = _last_run(runs)
    assert _count_tokens_calls(emulator) >= 1
    assert fallback["estimated_usd"] == local["estimated_usd"]
    assert "local estimate" in fallback["note"]
