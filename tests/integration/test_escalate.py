"""Uncertain rows go further (issue 15): `unsure: true` lets the model answer `unsure`, and
`escalate_to` sends those rows to a stronger model through the same state machine (its own version in
cb_versions, intents, batches, results), so they end with the stronger model's label, are paid once,
and are listed in the state view cb_review.

Real pipeline runs, real SDK over HTTP to the emulator (its error model answers `unsure` for its hardest
rows when the request's labels allow it), real DuckDB. What the stronger model answered is read from
the emulator's own files (what it received and the results it wrote), not from our tables.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from claude_batch import catalog, config, pipeline
from claude_batch.warehouse import Warehouse

LABELS = {"positive": "likes it", "negative": "dislikes it", "neutral": "no opinion"}
N = 300
STRONG = "claude-sonnet-5-5"
ERRORS = {"seed": 5, "unsure_rate": 0.12, "base_error": 0.03}
FIELDS = ("input_tokens", "output_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens")


def texts(n: int = N, start: int = 1) -> list[tuple[int, str, str]]:
    names = list(LABELS)
    return [(i, f"Review {i}: the order {i * 104729 % 99991} came", names[i % 3]) for i in range(start, start + n)]


def classifier(**options) -> config.ClassifierConfig:
    settings = {"preflight": "never", "pack_size": 20, "unsure": True, "escalate_to": STRONG,
                "instructions": "Classify the sentiment of each review.", **options}
    return config.build_config("esc_sentiment", settings, key="id", text="body", labels=LABELS)


@pytest.fixture
def db(reviews_db, emulator):
    # Duplicate texts too: a text is escalated (and paid) once, its rows share the cost.
    con = reviews_db(texts(), extra=[(N + i, t) for i, t, _ in texts(40)])
    emulator.set_faults(answer_errors=ERRORS)
    return con


def run(con, emulator, cfg, client):
    out = pipeline.run(cfg, Warehouse(con), "app.reviews", client=client)
    emulator.wait_idle(60)
    cur = con.execute(out.sql_query())
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def emulator_answers(emulator) -> tuple[dict[str, list[tuple[str, str]]], list[dict]]:
    """From the emulator's files: per row text, every (model, label) it answered in a batch, and the
    usage of every succeeded response."""
    sent = {(e["batch"], e["custom_id"]): e for e in emulator.received() if e.get("batch") not in (None, "messages")}
    answers: dict[str, list[tuple[str, str]]] = {}
    usage = []
    for path in sorted(Path(emulator.state_dir, "batches").glob("*/results.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["result"]["type"] != "succeeded":
                continue
            message = record["result"]["message"]
            usage.append({"model": message["model"], "usage": message["usage"]})
            rows = sent[(path.parent.name, record["custom_id"])]["rows"]
            body = json.loads(next(b["text"] for b in message["content"] if b["type"] == "text"))
            for group in body["groups"]:
                for item in group["ids"]:
                    answers.setdefault(rows[item - 1], []).append((message["model"], group["label"]))
    return answers, usage


def price(model: str, usage: dict) -> float:
    """USD of one batch response from the price table (written out here, not claude_batch.cost)."""
    band = catalog.model_info(model).prices[0]
    detail = usage.get("cache_creation") or {}
    return (usage["input_tokens"] * band.input + detail.get("ephemeral_5m_input_tokens", 0) * band.cache_write_5m
            + detail.get("ephemeral_1h_input_tokens", 0) * band.cache_write_1h
            + usage.get("cache_read_input_tokens", 0) * band.cache_read + usage["output_tokens"] * band.output) * 0.5 / 1e6


def test_unsure_rows_end_with_the_stronger_models_label_paid_once(db, emulator):
    cfg = classifier()
    client = emulator.client()
    body = {}
    first = run(db, emulator, cfg, client)  # the classifier's batch is submitted
    assert {r["status"] for r in first} == {"in_flight"}
    second = run(db, emulator, cfg, client)  # collected: unsure rows wait for the stronger model
    by_status = Counter(r["status"] for r in second)
    assert by_status["escalating"] > 0 and set(by_status) == {"succeeded", "escalating"}
    assert all(r["label"] == "unsure" for r in second if r["status"] == "escalating")
    assert not any(r["label"] == "unsure" for r in second if r["status"] == "succeeded")
    answers, _ = emulator_answers(emulator)
    unsure_texts = {t for t, a in answers.items() if ("claude-haiku-5-5", "unsure") in a}
    assert 0.06 * N < len(unsure_texts) < 0.2 * N  # the error model's unsure_rate, roughly
    sent_to_strong = [e for e in emulator.received() if e.get("model") == STRONG]
    assert sent_to_strong  # submitted by the same run that collected the unsure answers
    third = run(db, emulator, cfg, client)  # the stronger model's batch collected
    for _ in range(2):
        body = {r["id"]: r for r in third}
        if not any(r["status"] == "escalating" for r in third):
            break
        third = run(db, emulator, cfg, client)

    source = dict(db.execute("SELECT id, body FROM app.reviews").fetchall())
    answers, usage = emulator_answers(emulator)
    escalated = [r for r in third if r["status"] == "escalated"]
    assert {source[r["id"]] for r in escalated} == unsure_texts
    for r in escalated:
        strong = [label for model, label in answers[source[r["id"]]] if model == STRONG]
        assert strong == [r["label"]]  # answered once, by the stronger model, and that is the row's label
        assert r["model"] == STRONG and r["classifier_version"] == cfg.version and r["label"] != "unsure"
    # Each unsure text went to the stronger model once, whatever the rows sharing it.
    strong_rows = Counter(t for e in emulator.received() if e.get("model") == STRONG for t in e["rows"])
    assert set(strong_rows) == unsure_texts and set(strong_rows.values()) == {1}

    # Cost counted once: the table's cost_usd sums to what the emulator billed, priced here from its usage.
    billed = sum(price(u["model"], u["usage"]) for u in usage)
    assert sum(r["cost_usd"] for r in third) == pytest.approx(billed, rel=1e-9, abs=1e-12)
    assert db.execute("SELECT sum(billed_usd) FROM claude_batch.cb_requests").fetchone()[0] == pytest.approx(billed)
    strong_cost = db.execute("SELECT sum(billed_usd) FROM claude_batch.cb_requests WHERE model = ?",
                             [STRONG]).fetchone()[0]
    assert strong_cost > 0

    # The review view lists every unsure text with the stronger model's answer.
    review = db.execute("SELECT text_hash, escalation_status, escalated_labels, escalation_model "
                        "FROM claude_batch.cb_review WHERE classifier = 'esc_sentiment'").fetchall()
    hashes = {r["text_hash"]: r for r in escalated}
    assert {h for h, *_ in review} == {r["text_hash"] for r in escalated}
    for h, status, labels, model in review:
        assert status == "succeeded" and model == STRONG and labels == [hashes[h]["label"]]

    # Rerunning pays nothing twice and changes nothing.
    seen = len(emulator.received())
    again = run(db, emulator, cfg, client)
    assert len(emulator.received()) == seen
    assert {r["id"]: (r["status"], r["label"]) for r in again} == {r["id"]: (r["status"], r["label"]) for r in third}
    # The escalation version is recorded as such, and never counts as a version of its own.
    versions = dict(db.execute("SELECT model, escalates FROM claude_batch.cb_versions").fetchall())
    assert versions == {"claude-haiku-5-5": None, STRONG: cfg.version}


def test_escalation_settings_are_checked():
    with pytest.raises(config.ConfigError, match="unsure: true"):
        classifier(unsure=False)
    with pytest.raises(config.ConfigError, match="escalate_to"):
        classifier(escalate_to="claude-haiku-5-5")
    with pytest.raises(config.ConfigError, match="'unsure'"):
        config.build_config("x", {"unsure": True, "instructions": "x"}, key="id", text="b",
                            labels=["good", "unsure"])
    cfg = classifier()
    esc = config.escalation_config(cfg)
    assert [label.name for label in cfg.spec.labels] == [*LABELS, "unsure"]
    assert [label.name for label in esc.spec.labels] == list(LABELS) and esc.spec.model == STRONG
    assert esc.version != cfg.version != classifier(unsure=False, escalate_to=None).version


RUN_SCRIPT = """
import sys, duckdb
sys.path.insert(0, {tests!r})
from test_escalate import classifier
from claude_batch import pipeline
from claude_batch.warehouse import Warehouse
con = duckdb.connect({db!r})
pipeline.run(classifier(), Warehouse(con), "app.reviews")
con.close()
"""


def test_a_crash_while_escalating_pays_nothing_twice(tmp_path, emulator):
    """Killed right after the API created the stronger model's batch (its id not recorded): the next run
    adopts that batch (reconcile), so no unsure text is sent to the stronger model twice."""
    import os
    import subprocess
    import sys

    path = str(tmp_path / "w.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA app; CREATE TABLE app.reviews (id INTEGER, body VARCHAR)")
    con.executemany("INSERT INTO app.reviews VALUES (?, ?)", [(i, t) for i, t, _ in texts()])
    con.close()
    emulator.script({t: g for _, t, g in texts()})
    emulator.set_faults(answer_errors=ERRORS)
    env = {**os.environ, "ANTHROPIC_BASE_URL": emulator.base_url, "ANTHROPIC_API_KEY": emulator.api_key}
    script = RUN_SCRIPT.format(tests=str(Path(__file__).parent), db=path)

    def run_once(crash: str | None = None) -> int:
        extra = {"CLAUDE_BATCH_CRASH_AT": crash} if crash else {}
        done = subprocess.run([sys.executable, "-c", script], env={**env, **extra}, capture_output=True, text=True,
                              timeout=300)
        emulator.wait_idle(60)
        return done.returncode

    assert run_once() == 0  # the classifier's batch
    assert run_once("after_create") != 0  # collected; the stronger model's batch created, then killed
    strong = [e for e in emulator.received() if e.get("model") == STRONG]
    assert strong
    for _ in range(2):  # adopts the batch, collects it; then nothing to do
        assert run_once() == 0
    con = duckdb.connect(path)
    try:
        statuses = Counter(s for (s,) in con.execute(
            "SELECT status FROM claude_batch.cb_batches WHERE model = ?", [STRONG]).fetchall())
        escalated = con.execute("SELECT count(*) FROM claude_batch.cb_results WHERE model = ? AND status = 'succeeded'",
                                [STRONG]).fetchone()[0]
    finally:
        con.close()
    assert statuses == {"collected": 1}
    strong_rows = Counter(t for e in emulator.received() if e.get("model") == STRONG for t in e["rows"])
    assert set(strong_rows.values()) == {1} and escalated == len(strong_rows)


def test_escalation_in_real_time_for_a_small_set(db, emulator):
    """mode: auto: the classifier's 300 texts go in a batch, the few unsure ones to the stronger model in
    real time (under realtime_threshold), in the same run that collected them; paid once."""
    cfg = classifier(mode="auto")
    client = emulator.client()
    run(db, emulator, cfg, client)
    rows = run(db, emulator, cfg, client)
    statuses = Counter(r["status"] for r in rows)
    assert statuses["escalated"] > 0 and "escalating" not in statuses
    calls = [e for e in emulator.received() if e.get("model") == STRONG]
    assert calls and {e["batch"] for e in calls} == {"messages"}
    strong_rows = Counter(t for e in calls for t in e["rows"])
    assert set(strong_rows.values()) == {1}
    assert len(strong_rows) == len({r["text_hash"] for r in rows if r["status"] == "escalated"})
    billed = db.execute("SELECT sum(billed_usd) FROM claude_batch.cb_requests").fetchone()[0]
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(billed, rel=1e-9)
    seen = len(emulator.received())
    run(db, emulator, cfg, client)
    assert len(emulator.received()) == seen


def test_every_row_explained_with_escalated_rows(project, emulator):
    """Real dbt runs: escalated rows pass the package's generic tests (every_row_explained,
    labels_in_set); an escalated row that lost its label fails every_row_explained."""
    project.add_reviews([(i, t) for i, t, _ in texts(30)])
    emulator.script({t: g for _, t, g in texts(30)})
    emulator.set_faults(answer_errors={"seed": 1, "unsure_rate": 0.3})
    settings = {"cb_unsure": True, "cb_escalate_to": STRONG}
    for _ in range(2):  # classify; collect, escalate the unsure rows
        project.dbt("run", vars=settings)
        emulator.wait_idle(30)
    assert project.sql("SELECT count(*) FROM main.review_sentiment WHERE status = 'escalating' "
                       "AND label = 'unsure'")[0][0] > 0
    project.dbt("build", vars=settings)  # collects the stronger model's answers; every test passes
    table = project.table()
    escalated = [r for r in table.values() if r["status"] == "escalated"]
    assert escalated and all(r["label"] in LABELS and r["model"] == STRONG for r in escalated)
    assert {r["status"] for r in table.values()} <= {"succeeded", "escalated"}
    project.sql(f"UPDATE main.review_sentiment SET label = NULL, labels = NULL WHERE id = {escalated[0]['id']}")
    result = project.dbt("test", vars=settings, expect_ok=False)
    assert any("every_row_explained" in r.node.name for r in result.result if str(r.status) == "fail")
