"""Agreement checks find the configured position effect, and nothing without one; a calibration's spend
stays under its cap (issue 15, done-when). Synthetic texts (no ../shared/data needed), the real
pipeline, real SDK over HTTP to the emulator with its error model, real DuckDB.

Nested errors make the expectation exact: with the same pack size, a row's label differs between the
configured order and the shuffled one exactly when its difficulty falls between its two error rates,
so the expected number of position changes is sum |p(position as configured) - p(position shuffled)|
= position_growth * sum |position difference|, computed here from the places the items table records.
"""

from __future__ import annotations

import pytest

from claude_batch import calibrate, config, pipeline
from claude_batch.warehouse import Warehouse

LABELS = {"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"}
N = 400
PACK = 40


def texts() -> list[tuple[int, str, str]]:
    names = list(LABELS)
    return [(i, f"Review {i}: the box {i * 7907 % 10009} was delivered", names[i % 3]) for i in range(1, N + 1)]


@pytest.fixture
def classified(reviews_db, emulator):
    con = reviews_db(texts())
    cfg = config.build_config("checks", {"preflight": "never", "pack_size": PACK}, key="id", text="body",
                              labels=LABELS, instructions="Classify the sentiment of each review.")
    client = emulator.client()
    pipeline.run(cfg, Warehouse(con), "app.reviews", client=client)
    emulator.wait_idle(60)
    return con, cfg, client


def calibrate_once(con, cfg, client, seed: int, **kwargs) -> dict:
    variants = [calibrate.Variant("one_per_request", 1, "grouped"), calibrate.Variant("as_configured", PACK, "grouped"),
                calibrate.Variant("shuffled", PACK, "grouped", shuffled=True)]
    return calibrate.Calibration(cfg, Warehouse(con), "app.reviews", client, sample_size=N, seed=seed,
                                 variants=variants, **kwargs).run(wait_seconds=60, poll_seconds=0.05)


@pytest.mark.parametrize("position_growth", [0.006, 0.0])
def test_agreement_checks_find_the_configured_position_effect(classified, emulator, position_growth):
    con, cfg, client = classified
    emulator.set_faults(answer_errors={"seed": 8, "base_error": 0.02, "position_growth": position_growth})
    out = calibrate_once(con, cfg, client, seed=3)
    cal = out["calibration"]["calibration_id"]
    assert out["calibration"]["status"] == "collected"
    places = con.execute("""
        SELECT a.position, s.position FROM claude_batch.cb_calibration_items a
        JOIN claude_batch.cb_calibration_items s USING (calibration_id, text_hash)
        WHERE calibration_id = ? AND a.variant = 'as_configured' AND s.variant = 'shuffled'""", [cal]).fetchall()
    assert len(places) == N and sum(a != s for a, s in places) > N / 2  # the shuffle moved most rows
    expected = sum(position_growth * abs(a - s) for a, s in places)
    found = con.execute("SELECT count(*) FROM claude_batch.cb_calibration_position_changes WHERE calibration_id = ?",
                        [cal]).fetchone()[0]
    if position_growth == 0:
        assert found == 0  # no configured effect: none found
    else:
        # A sum of independent Bernoulli draws: its variance is at most its mean.
        assert expected > 25 and abs(found - expected) <= 4 * expected ** 0.5


def test_calibration_spend_stays_under_its_cap(classified, emulator):
    con, cfg, client = classified
    emulator.set_faults(answer_errors={"seed": 8, "base_error": 0.02, "position_growth": 0.006})
    job = calibrate.Calibration(cfg, Warehouse(con), "app.reviews", client, sample_size=N, seed=5)
    planned = job.plan(job.sample(), "probe")
    estimates = [p["estimated_usd"] for p in planned]
    cap = estimates[0] + estimates[1] + estimates[2] / 2  # room for the reference and one variant, not all
    out = calibrate.Calibration(cfg, Warehouse(con), "app.reviews", client, sample_size=N, seed=5,
                                max_usd=cap).run(wait_seconds=60, poll_seconds=0.05)
    row = out["calibration"]
    assert row["status"] == "collected" and "not sent" in row["note"]
    assert 0 < row["billed_usd"] <= row["estimated_usd"] <= cap
    variants = con.execute("SELECT sum(estimated_usd), sum(billed_usd) FROM claude_batch.cb_calibration_variants "
                           "WHERE calibration_id = ?", [row["calibration_id"]]).fetchone()
    assert variants[0] == pytest.approx(row["estimated_usd"]) and variants[1] == pytest.approx(row["billed_usd"])
