"""`pack_size: auto` (issue 15): the classifier calibrates its version on a seeded sample (one row per
request against each candidate pack size, calibrate.auto_pack_size) and sends its rows at the largest
pack size whose agreement stays at or above `min_agreement`.

The emulator's error model is configured to grow with the pack; the pack size that curve implies is
computed here from the configured rates alone (nested errors: a row's label differs from the one-row
answer with probability p(pack, position) - p(1, 1)), and the classifier must pick it. Real pipeline
runs, real SDK over HTTP, real DuckDB.
"""

from __future__ import annotations

import logging

import pytest

from claude_batch import calibrate, config, pipeline
from claude_batch.warehouse import Warehouse

LABELS = {"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"}
N = 800  # distinct texts; the calibration samples all of them (calibration_sample below)
SIZES = (2, 10, 50)


def texts() -> list[tuple[int, str, str]]:
    names = list(LABELS)
    return [(i, f"Review {i}: the parcel number {i * 7919 % 10007} arrived", names[i % 3]) for i in range(1, N + 1)]


def classifier(**options) -> config.ClassifierConfig:
    settings = {"preflight": "never", "pack_size": "auto", "calibration_sample": N,
                "calibration_pack_sizes": list(SIZES), "instructions": "Classify the sentiment of each review.",
                **options}
    return config.build_config("auto_sentiment", settings, key="id", text="body", labels=LABELS)


def errors(pack_growth: float) -> dict:
    return {"seed": 11, "base_error": 0.02, "pack_growth": pack_growth, "position_growth": 0.0}


def implied_pack_size(err: dict, sizes, sample: int, min_agreement: float) -> int:
    """The pack size the configured curve implies: for each candidate, the expected share of rows whose
    label differs from one row per request (packs of `size` consecutive rows, the last one shorter)."""
    def p(pack: int, position: int) -> float:
        return err["base_error"] + err["pack_growth"] * (pack - 1) + err["position_growth"] * (position - 1)

    best = 1
    for size in sizes:
        diff = 0.0
        for start in range(0, sample, size):
            rows = min(size, sample - start)
            diff += sum(p(rows, pos) - p(1, 1) for pos in range(1, rows + 1))
        if 1 - diff / sample >= min_agreement:
            best = max(best, size)
    return best


@pytest.fixture
def db(reviews_db):
    return reviews_db(texts())


def sent_pack_sizes(emulator, since: int) -> set[int]:
    """Sizes of the classifier's batch requests (not the calibration's: custom_id cal...)."""
    return {len(e["rows"]) for e in emulator.received()[since:]
            if e.get("batch") not in (None, "messages") and not (e.get("custom_id") or "").startswith("cal")}


@pytest.mark.parametrize("pack_growth", [0.001, 0.0003])
def test_auto_picks_the_pack_size_the_error_curve_implies(db, emulator, caplog, pack_growth):
    err = errors(pack_growth)
    emulator.set_faults(answer_errors=err)
    expected = implied_pack_size(err, SIZES, N, 0.98)
    assert expected == {0.001: 10, 0.0003: 50}[pack_growth]  # the two curves imply different choices
    cfg = classifier()
    client = emulator.client()
    # Run 1: no calibration of this version yet: it is submitted, and no row of the classifier is sent.
    with caplog.at_level(logging.INFO, logger="claude_batch"):
        out = pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)
    assert db.execute(f"SELECT count(*) FROM ({out.sql_query()}) WHERE status = 'pending'").fetchone()[0] == N
    assert sent_pack_sizes(emulator, 0) == set()
    cal = db.execute("SELECT version, status, sample_size FROM claude_batch.cb_calibrations").fetchall()
    assert cal == [(cfg.version, "submitted", N)]
    assert "no calibration of version" in caplog.text
    emulator.wait_idle(60)

    # Run 2: the calibration is collected, the pack size chosen and said, the rows sent in packs of it.
    caplog.clear()
    seen = len(emulator.received())
    with caplog.at_level(logging.INFO, logger="claude_batch"):
        pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)
    assert max(sent_pack_sizes(emulator, seen)) == expected
    # One line (dbt's logger, once dbt has run in this process, also passes it on with its own prefix).
    lines = [r.getMessage() for r in caplog.records]
    said = sorted({m[m.index("pack_size auto: "):] for m in lines if "pack_size auto: " in m and "largest" in m})
    assert len(said) == 1 and f"pack_size auto: {expected} for version {cfg.version}," in said[0]
    for size in SIZES:  # the measured agreement of every candidate is in the line
        assert f"{size} → " in said[0]
    # The measured agreement is the configured curve's, within sampling error.
    measured = dict(db.execute(
        "SELECT pack_size, agreement FROM claude_batch.cb_calibration_agreement WHERE label IS NULL").fetchall())
    for size in SIZES:
        want = 1 - err["pack_growth"] * (size - 1)
        se = max((1 - want) * want / N, 1e-4) ** 0.5
        assert abs(measured[size] - want) <= 4 * se, size
    note = db.execute("SELECT note FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    assert f"pack_size auto: {expected}" in note
    emulator.wait_idle(60)

    # Run 3: the calibration is reused (no second one), nothing is sent again.
    seen = len(emulator.received())
    out = pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)
    assert db.execute(f"SELECT count(*) FROM ({out.sql_query()}) WHERE status = 'succeeded'").fetchone()[0] == N
    assert db.execute("SELECT count(*) FROM claude_batch.cb_calibrations").fetchone()[0] == 1
    assert len(emulator.received()) == seen


def test_a_new_version_is_calibrated_again_before_its_rows_are_sent(db, emulator):
    emulator.set_faults(answer_errors=errors(0.001))
    client = emulator.client()
    first = classifier(calibration_sample=200)
    for _ in range(3):
        pipeline.run(first, Warehouse(db), "app.reviews", client=client)
        emulator.wait_idle(60)
    # A prompt change is a new version: reclassified, it is calibrated first, its rows wait for it.
    second = classifier(calibration_sample=200, instructions="Classify the sentiment of each customer review.",
                        reclassify=True)
    assert second.version != first.version
    seen = len(emulator.received())
    pipeline.run(second, Warehouse(db), "app.reviews", client=client)
    assert sent_pack_sizes(emulator, seen) == set()
    versions = db.execute("SELECT version, status FROM claude_batch.cb_calibrations ORDER BY created_at").fetchall()
    assert [v for v, _ in versions] == [first.version, second.version] and versions[1][1] == "submitted"
    emulator.wait_idle(60)
    pipeline.run(second, Warehouse(db), "app.reviews", client=client)
    assert max(sent_pack_sizes(emulator, seen)) == 10


def test_the_calibration_is_priced_first_and_capped_by_the_budget_guard(db, emulator, caplog):
    """A budget too small for one row per request sends nothing (the rows wait, the warning says how to
    fix it); a budget that fits counts the calibration's estimate in the run's spend."""
    emulator.set_faults(answer_errors=errors(0.001))
    client = emulator.client()
    with caplog.at_level(logging.WARNING, logger="claude_batch"):
        pipeline.run(classifier(max_usd_per_run=0.0001), Warehouse(db), "app.reviews", client=client)
    assert emulator.received() == []
    assert db.execute("SELECT status FROM claude_batch.cb_calibrations").fetchall() == [("over_budget",)]
    assert "does not fit the budget" in caplog.text
    # Room for the calibration: it is sent, its estimate is in the run's estimated_usd, under the cap.
    cfg = classifier(max_usd_per_run=1.0, calibration_max_usd=0.5)
    pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)
    est, = db.execute("SELECT estimated_usd FROM claude_batch.cb_calibrations WHERE status = 'submitted'").fetchone()
    assert 0 < est <= 0.5
    ran = db.execute("SELECT estimated_usd FROM claude_batch.cb_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    assert ran == pytest.approx(est)
    emulator.wait_idle(60)
    pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)
    billed = db.execute("SELECT billed_usd FROM claude_batch.cb_calibrations WHERE status = 'collected'").fetchone()[0]
    assert 0 < billed <= est


def test_pack_size_auto_settings_are_checked():
    with pytest.raises(config.ConfigError, match="min_agreement"):
        classifier(min_agreement=1.5)
    with pytest.raises(config.ConfigError, match="calibration_pack_sizes"):
        classifier(calibration_pack_sizes=[1, 10])
    with pytest.raises(config.ConfigError, match="pack_size"):
        classifier(pack_size="big")
    assert classifier(calibration_pack_sizes="[25, 5]").calibration_pack_sizes == (5, 25)


def test_a_dry_run_sends_nothing_and_estimates_at_the_calibrated_size(db, emulator, caplog):
    """Before a calibration: nothing sent, none submitted, estimated at the largest candidate (50: 16
    requests); after one: estimated at its choice (10: 80 requests)."""
    emulator.set_faults(answer_errors=errors(0.001))
    client = emulator.client()
    with caplog.at_level(logging.INFO):
        pipeline.run(classifier(dry_run=True), Warehouse(db), "app.reviews", client=client)
    assert emulator.received() == []  # not even a calibration
    assert db.execute("SELECT count(*) FROM claude_batch.cb_calibrations").fetchone()[0] == 0
    assert "would submit 800 text(s) in 16 request(s)" in caplog.text
    pipeline.run(classifier(), Warehouse(db), "app.reviews", client=client)  # submits the calibration
    emulator.wait_idle(60)
    # Collected (as the next real run would, before sending the rows); a dry run collects nothing.
    size, _ = calibrate.auto_pack_size(classifier(), Warehouse(db), "app.reviews", client, max_usd=None)
    assert size == 10
    seen = len(emulator.received())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        pipeline.run(classifier(dry_run=True), Warehouse(db), "app.reviews", client=client)
    assert len(emulator.received()) == seen
    assert "would submit 800 text(s) in 80 request(s)" in caplog.text


def test_a_calibration_left_submitting_is_adopted_or_given_up_never_paid_twice(db, emulator):
    """As if a run was killed between the calibration's create call and recording its answer (status
    'submitting', no batch id): the next run finds its batch by custom_id and adopts it. A row whose
    batch the API does not have (here: the only batch of that size carries another calibration's ids)
    is given up after reconcile_grace_seconds and a new calibration is submitted."""
    emulator.set_faults(answer_errors=errors(0.001))
    client = emulator.client()
    cfg = classifier(calibration_sample=200)

    def calibration_batches() -> set[str]:
        return {e["batch"] for e in emulator.received() if (e.get("custom_id") or "").startswith("cal")}

    pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)  # submits the calibration
    emulator.wait_idle(60)
    first = calibration_batches()
    db.execute("UPDATE claude_batch.cb_calibrations SET status = 'submitting', batch_id = NULL")
    pipeline.run(cfg, Warehouse(db), "app.reviews", client=client)  # adopts it, collects it, sends the rows
    assert calibration_batches() == first
    assert db.execute("SELECT status, batch_id FROM claude_batch.cb_calibrations").fetchall() == [
        ("collected", next(iter(first)))]
    assert sent_pack_sizes(emulator, 0) == {10}

    # Another calibration id on the row: the batch is not its own, so after the grace it is given up.
    db.execute("UPDATE claude_batch.cb_calibrations SET status = 'submitting', batch_id = NULL, "
               "calibration_id = 'gone'")
    db.execute("UPDATE claude_batch.cb_calibration_variants SET calibration_id = 'gone'")
    calibrate.auto_pack_size(classifier(calibration_sample=200, reconcile_grace_seconds=0), Warehouse(db),
                             "app.reviews", client, max_usd=None)
    rows = dict(db.execute("SELECT calibration_id, status FROM claude_batch.cb_calibrations").fetchall())
    assert rows.pop("gone") == "abandoned" and list(rows.values()) == ["submitted"]
    assert len(calibration_batches()) == 2
