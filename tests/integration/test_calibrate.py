"""Agreement checks without gold labels (calibrate.py): the real pipeline classifies W1 sentences, then
a calibration sends a seeded sample under alternative configurations to the emulator (real SDK over
HTTP, error model on, the gold label as the truth) and writes its figures to the state tables.

Checked: the figures equal a plain Python computation from the items table, the agreement matches
what the error model predicts within sampling error, position changes are the rows whose label differs
between the configured order and the shuffled one, the spend is estimated first and capped, a
calibration resumes and is reused, and a dbt model runs it from the classifier's recorded settings.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import duckdb
import pytest

from claude_batch import calibrate, config, pipeline
import workloads  # bench/workloads.py
from claude_batch.warehouse import Warehouse

ERRORS = {"seed": 2, "base_error": 0.04, "pack_growth": 0.003, "position_growth": 0.004, "grouped_extra": 0.05}
N = 300


@pytest.fixture(scope="module")
def w1() -> list[tuple[int, str, str]]:
    if workloads.default_data_dir() is None:
        pytest.skip("W1 corpus not found")
    gold = workloads.load_w1_gold()
    texts = sorted(gold)
    random.Random(9).shuffle(texts)
    return [(i + 1, t, gold[t]) for i, t in enumerate(texts[:N])]


def classifier(**options) -> config.ClassifierConfig:
    return config.build_config("sentiment", {"preflight": "never", "pack_size": 20, **options}, key="id", text="body",
                               labels={"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"},
                               instructions="Classify the sentiment of each review.")


@pytest.fixture
def db(tmp_path, emulator, w1):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA app; CREATE TABLE app.reviews (id INTEGER, body VARCHAR)")
    con.executemany("INSERT INTO app.reviews VALUES (?, ?)", [(i, t) for i, t, _ in w1])
    emulator.script({t: g for _, t, g in w1})
    emulator.set_faults(answer_errors=ERRORS)
    client = emulator.client()
    cfg = classifier()
    for _ in range(4):  # the classifier itself, until every row is labelled
        out = pipeline.run(cfg, Warehouse(con), "app.reviews", client=client)
        emulator.wait_idle(60)
        if not con.execute(f"SELECT count(*) FROM ({out.sql_query()}) WHERE status <> 'succeeded'").fetchone()[0]:
            break
    yield con, client, cfg
    con.close()


def expected_error(pack: int, position: int, grouped: bool) -> float:
    return (ERRORS["base_error"] + ERRORS["pack_growth"] * (pack - 1) + ERRORS["position_growth"] * (position - 1)
            + (ERRORS["grouped_extra"] if grouped and pack > 1 else 0))


def test_figures_agreement_and_position_changes(db, emulator):
    con, client, cfg = db
    job = calibrate.Calibration(cfg, Warehouse(con), "app.reviews", client, sample_size=250, seed=4,
                                variants=calibrate.default_variants(cfg, [40]))
    sent_before = len(emulator.received())
    out = job.run(wait_seconds=30, poll_seconds=0.05)
    assert out["calibration"]["status"] == "collected"
    cal = out["calibration"]["calibration_id"]
    received = emulator.received()[sent_before:]
    # 250 texts a variant: 250 one-row requests, 13 packs of 20 (twice), 7 of 40, 13 keyed packs of 20.
    assert len(received) == 250 + 13 + 13 + 7 + 13
    assert Counter(len(r["rows"]) for r in received)[1] == 250

    items = defaultdict(dict)
    for variant, text_hash, status, labels, position, pack_rows in con.execute(
            "SELECT variant, text_hash, status, labels, position, pack_rows FROM claude_batch.cb_calibration_items "
            "WHERE calibration_id = ?", [cal]).fetchall():
        assert status == "succeeded"
        items[variant][text_hash] = (tuple(labels), position, pack_rows)
    assert {len(v) for v in items.values()} == {250}
    reference = {h: v[0] for h, v in items["one_per_request"].items()}

    rows = {(a["variant"], a["label"]): a for a in out["agreement"]}
    for variant, answers in items.items():
        pairs = [(answers[h][0], reference[h]) for h in reference]
        agreement = sum(a == r for a, r in pairs) / len(pairs)
        va, vr = Counter(a for a, _ in pairs), Counter(r for _, r in pairs)
        pe = sum(va[c] * vr[c] for c in vr) / len(pairs) ** 2
        overall = rows[(variant, None)]
        assert overall["texts"] == 250 and overall["agreement"] == pytest.approx(agreement, abs=1e-12)
        assert overall["kappa"] == pytest.approx((agreement - pe) / (1 - pe), abs=1e-12)
        assert overall["billed_usd"] > 0 and overall["estimated_usd"] >= overall["billed_usd"]
        for label in vr:
            per = [a == r for a, r in pairs if r == label]
            assert rows[(variant, ",".join(label))]["agreement"] == pytest.approx(sum(per) / len(per), abs=1e-12)
        # The error model predicts the disagreement: nested errors, so the difference of the error rates.
        spec = {"one_per_request": (1, True), "as_configured": (20, True), "shuffled": (20, True),
                "pack_size_40": (40, True), "other_format": (20, False)}[variant]
        predicted = sum(expected_error(spec[0], answers[h][1], spec[1]) - expected_error(1, 1, True)
                        for h in reference) / 250
        se = max(predicted * (1 - predicted) / 250, 1e-4) ** 0.5
        assert abs((1 - agreement) - predicted) <= 4 * se, variant

    moved = {h for h in reference if items["as_configured"][h][0] != items["shuffled"][h][0]}
    changes = con.execute("SELECT text_hash, position_as_configured, position_shuffled FROM "
                          "claude_batch.cb_calibration_position_changes WHERE calibration_id = ?", [cal]).fetchall()
    assert {h for h, _, _ in changes} == moved and moved  # the position effect shows on some rows
    assert all(a != s for _, a, s in changes)
    # The largest pack size whose agreement with one row per request is at least 98 %.
    assert out["recommended_pack_size"] == max(
        [1] + [a["pack_size"] for a in out["agreement"] if a["label"] is None and not a["shuffled"]
               and a["variant"] != "other_format" and a["agreement"] >= 0.98])
    assert calibrate.recommended_pack_size(out["agreement"], 0.0) == 40


def test_spend_is_estimated_first_and_capped_by_the_budget(db, emulator):
    con, client, cfg = db
    wh = Warehouse(con)
    full = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=100)
    planned = full.plan(full.sample(), "x")
    estimates = [p["estimated_usd"] for p in planned]
    assert all(e > 0 for e in estimates)
    # Room for the reference and the configured pack, not the rest: those two are sent, no more.
    budget = estimates[0] + estimates[1] + min(estimates[2:]) / 2
    sent_before = len(emulator.received())
    out = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=100, max_usd=budget).run(
        wait_seconds=30, poll_seconds=0.05)
    assert out["calibration"]["status"] == "collected" and "not sent" in out["calibration"]["note"]
    assert {a["variant"] for a in out["agreement"]} == {"one_per_request", "as_configured"}
    assert len(emulator.received()) - sent_before == 100 + 5
    assert out["calibration"]["estimated_usd"] <= budget
    # A budget below the reference sends nothing.
    none = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=100, seed=1,
                                 max_usd=estimates[0] / 2).run()
    assert none["calibration"]["status"] == "over_budget" and none["agreement"] == []
    assert len(emulator.received()) - sent_before == 105


def test_a_calibration_resumes_and_is_reused(db, emulator):
    con, client, cfg = db
    wh = Warehouse(con)
    emulator.pause_worker()
    first = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=60).run()
    assert first["calibration"]["status"] == "submitted" and first["agreement"] == []
    emulator.resume_worker()
    emulator.wait_idle(30)
    sent = len(emulator.received())
    second = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=60).run()
    assert second["calibration"]["calibration_id"] == first["calibration"]["calibration_id"]
    assert second["calibration"]["status"] == "collected" and second["agreement"]
    third = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=60).run()
    assert third["agreement"] == second["agreement"] and len(emulator.received()) == sent
    fresh = calibrate.Calibration(cfg, wh, "app.reviews", client, sample_size=60).run(fresh=True, wait_seconds=30,
                                                                                      poll_seconds=0.05)
    assert fresh["calibration"]["calibration_id"] != first["calibration"]["calibration_id"]


def test_the_settings_are_rebuilt_from_the_state_tables(db):
    con, _, cfg = db
    rebuilt = calibrate.config_from_state(Warehouse(con), "sentiment")
    assert rebuilt.version == cfg.version and rebuilt.pack_size == 20 and rebuilt.spec == cfg.spec
    with pytest.raises(config.ConfigError, match="no run"):
        calibrate.config_from_state(Warehouse(con), "never_ran")


def test_a_dbt_model_calibrates_the_classifier_from_its_recorded_settings(project, emulator, w1):
    con = duckdb.connect(str(project.db))
    con.execute("CREATE SCHEMA IF NOT EXISTS app")
    con.execute("CREATE TABLE app.quality_reviews (id INTEGER, body VARCHAR)")
    con.executemany("INSERT INTO app.quality_reviews VALUES (?, ?)", [(i, t) for i, t, _ in w1])
    con.close()
    emulator.script({t: g for _, t, g in w1})
    emulator.set_faults(answer_errors=ERRORS)
    for _ in range(3):
        project.dbt("run", select="quality_sentiment")
    project.dbt("run", select="quality_sentiment_calibration")
    rows = project.dicts("SELECT * FROM main.quality_sentiment_calibration WHERE label IS NULL ORDER BY variant")
    assert {r["variant"] for r in rows} == {"one_per_request", "as_configured", "shuffled", "pack_size_40", "other_format"}
    assert all(r["calibration_status"] == "collected" and r["texts"] == 100 for r in rows)
    assert next(r for r in rows if r["variant"] == "one_per_request")["agreement"] == 1.0
    stored = project.sql("SELECT count(*) FROM claude_batch.cb_calibrations WHERE classifier = 'quality_sentiment'")
    project.dbt("run", select="quality_sentiment_calibration")  # reused: no second calibration
    assert project.sql("SELECT count(*) FROM claude_batch.cb_calibrations WHERE classifier = 'quality_sentiment'") == stored
