"""The static report (claude_batch/report.py), from state that real dbt runs wrote against the emulator
(error model on), rendered in a real headless Chromium (Debian's, driven by Playwright): the elements are
there, every figure shown equals the state tables' own, nothing is fetched from the network, the console
stays clean; and a screenshot is taken.

``CLAUDE_BATCH_UPDATE_SCREENSHOT=1`` (``make screenshot``) also writes that screenshot to docs/report.png
(README shows it), so the picture in the docs is the one this test renders.

The browser: ``/usr/bin/chromium`` (or ``$CHROMIUM``), from Debian's package (``make browser``; CI
installs it). With ``CI`` set a missing browser or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "report.png"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections (updates, sync, field trials)
# are refused many at a time on a closed network; the profile is a new empty directory each time.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LABELS = ["positive", "negative", "neutral"]
ERRORS = {"seed": 7, "base_error": 0.06, "pack_growth": 0.002, "position_growth": 0.003, "grouped_extra": 0.03,
          "confusion": {"positive": {"negative": 3, "neutral": 1}, "negative": {"positive": 1}}}
N = 160


def _need(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must have it: `make test` installs it, scripts/ensure_chromium.sh)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("Playwright is not installed (pip install -e '.[test]')")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _need(f"no Chromium at {CHROMIUM} (make browser: apt-get install chromium)")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1200, "height": 900})
        try:
            yield context
        finally:
            context.close()


def open_page(context, path: Path):
    """The page, and what it asked for and complained about while loading."""
    page = context.new_page()
    seen = {"requests": [], "console": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def dbt(project, select: str, vars: dict) -> None:
    """dbt in a subprocess, as a user runs it: an in-process dbt-duckdb keeps the file open, which would
    lock the report's command out of it."""
    proc = project.dbt_cli("run", select=select, vars=vars)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def build_until_done(project, vars: dict, runs: int = 4) -> None:
    for _ in range(runs):
        dbt(project, "quality_sentiment", vars)
        if not project.sql("SELECT count(*) FROM main.quality_sentiment WHERE status <> 'succeeded'")[0][0]:
            return
    raise AssertionError(f"rows still waiting after {runs} runs")


def money(text: str) -> float:
    """A dollar figure as the report shows it ($0.001234, $1,234.56)."""
    m = re.fullmatch(r"\$(-?[\d,]+\.\d+)", text.strip())
    assert m, f"not a dollar figure: {text!r}"
    return float(m.group(1).replace(",", ""))


def close_to_shown(shown: float, value: float, text: str) -> None:
    """``shown`` is ``value`` rounded to the digits ``text`` shows."""
    decimals = len(text.split(".")[-1].rstrip(" %"))
    assert abs(shown - value) <= 0.5 * 10 ** -decimals + 1e-12, (text, value)


@pytest.fixture
def state(project, emulator):
    """Two versions of quality_sentiment (grouped, then keyed with reclassify), each evaluated against gold
    labels and calibrated, by real dbt runs; texts scripted to their gold label, the error model on."""
    rng = random.Random(3)
    words = {"positive": "love it, works great", "negative": "broke, want a refund", "neutral": "arrived on a Tuesday"}
    gold = {i: rng.choice(LABELS) for i in range(1, N + 1)}
    texts = {i: f"Review {i}: {words[g]} ({rng.randrange(10 ** 6)})" for i, g in gold.items()}
    project.write_table("quality_reviews", "id INTEGER, body VARCHAR", list(texts.items()))
    project.write_table("quality_gold", "id INTEGER, label VARCHAR", list(gold.items()))
    emulator.script({texts[i]: g for i, g in gold.items()})
    emulator.set_faults(answer_errors=ERRORS)
    for vars in ({}, {"cb_answer_format": "keyed", "cb_reclassify": True}):
        build_until_done(project, vars)
        dbt(project, "quality_sentiment_eval quality_sentiment_confusion quality_sentiment_calibration", vars)
    if os.environ.get("KEEP_STATE"):
        shutil.copyfile(project.db, os.environ["KEEP_STATE"])
    return project


def report(project, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "claude_batch.report", "--db", str(project.db), "--classifier", "quality_sentiment",
         "--out", str(out), *extra], capture_output=True, text=True, timeout=120)
    return proc, out


def test_the_report_shows_the_state_tables_figures_in_a_real_browser(state, browser_context, tmp_path):
    project = state
    proc, out = report(project, tmp_path, "--evaluation", "main.quality_sentiment_eval",
                       "--confusion", "main.quality_sentiment_confusion")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and out.stat().st_size > 5000
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must load nothing"
    assert "<script" not in html

    page, seen = open_page(browser_context, out)
    assert seen["requests"] == [out.as_uri()]  # nothing but the file itself
    assert seen["errors"] == [] and [m for m in seen["console"] if m[0] in ("error", "warning")] == []
    assert page.title().startswith("quality_sentiment")

    # What each run cost: one row per cb_cost_by_run row, each figure the view's.
    runs = project.dicts("SELECT run_id, billed_usd, naive_usd, saved_usd FROM claude_batch.cb_cost_by_run "
                         "WHERE classifier = 'quality_sentiment' ORDER BY started_at, run_id")
    assert len(runs) >= 4
    shown_runs = page.locator("table.runs tbody tr")
    assert shown_runs.count() == len(runs)
    billed_total = 0.0
    for i, run in enumerate(runs):
        row = shown_runs.nth(i)
        assert row.get_attribute("data-run") == run["run_id"]
        for column in ("billed_usd", "naive_usd", "saved_usd"):
            text = row.locator(f"td.{column.split('_')[0]}").inner_text()
            close_to_shown(money(text), run[column], text)
        billed_total += run["billed_usd"]
    assert billed_total > 0
    text = page.locator("#kpi-billed .v").inner_text()
    close_to_shown(money(text), billed_total, text)
    bars = page.locator("#runs svg.bars rect.bar[data-stack='billed']")
    assert sorted(float(bars.nth(i).get_attribute("data-value")) for i in range(bars.count())) == sorted(
        r["billed_usd"] for r in runs if r["billed_usd"])

    # Cost against quality: a point per calibration variant (both versions) and per evaluated version.
    agreement = project.dicts(
        "SELECT a.calibration_id, a.version, a.variant, a.agreement, a.kappa, a.billed_usd, "
        "(SELECT count(*) FROM claude_batch.cb_calibration_items i WHERE i.calibration_id = a.calibration_id "
        "AND i.variant = a.variant) AS items FROM claude_batch.cb_calibration_agreement a "
        "WHERE a.classifier = 'quality_sentiment' AND a.label IS NULL")
    versions = {a["version"] for a in agreement}
    assert len(versions) == 2 and len(agreement) == 10
    evaluation = project.dicts("SELECT * FROM main.quality_sentiment_eval WHERE scope = 'overall'")
    assert len(evaluation) == 1  # the table holds the keyed version's rows only (reclassified)
    points = page.locator("#quality svg.scatter g.point")
    assert points.count() == len(agreement) + len(evaluation)
    drawn = {(points.nth(i).get_attribute("data-series"), points.nth(i).get_attribute("data-name")):
             (float(points.nth(i).get_attribute("data-x")), float(points.nth(i).get_attribute("data-y")))
             for i in range(points.count())}
    for a in agreement:
        x, y = drawn[(f"agreement, version {a['version'][:8]}", a["variant"])]
        assert y == pytest.approx(a["agreement"]) and x == pytest.approx(a["billed_usd"] / a["items"] * 1000)
        row = page.locator(f"table.calibration[data-version='{a['version']}'] tr[data-variant='{a['variant']}']")
        text = row.locator("td.agreement").inner_text()
        close_to_shown(float(text.rstrip(" %")) / 100, a["agreement"], text.replace(" %", "00"))
        text = row.locator("td.billed").inner_text()
        close_to_shown(money(text), a["billed_usd"], text)
    (e,) = evaluation
    (x, y), = [v for (series, _), v in drawn.items() if series == "accuracy vs gold"]
    assert y == pytest.approx(e["accuracy"]) and x == pytest.approx(e["cost_usd"] / e["gold_rows"] * 1000)
    text = page.locator(f"table.evaluation tr[data-version='{e['classifier_version']}'] td.accuracy").inner_text()
    close_to_shown(float(text.rstrip(" %")) / 100, e["accuracy"], text.replace(" %", "00"))

    # The confusion matrix: gold against predicted, counted here from the classifier's table and the gold.
    counted = Counter(project.sql("SELECT g.label, m.label FROM main.quality_sentiment m "
                                  "JOIN app.quality_gold g USING (id) WHERE m.label IS NOT NULL"))
    assert page.locator("table.confusion").get_attribute("data-kind") == "gold"
    cells = page.locator("table.confusion td")
    shown = {(c.locator("xpath=..").get_attribute("data-row"), c.get_attribute("data-col")): int(c.inner_text())
             for c in cells.all()}
    assert {k: v for k, v in shown.items() if v} == dict(counted)
    assert sum(v for (g, p), v in counted.items() if g != p) > 0  # the error model made some wrong

    # Label counts over time: per label, every distinct text labelled (both versions), from cb_results.
    expected = Counter()
    for labels, n in project.sql("SELECT labels, count(*) FROM claude_batch.cb_current_results "
                                 "WHERE classifier = 'quality_sentiment' AND status = 'succeeded' GROUP BY labels"):
        for label in labels:
            expected[label] += n
    shown_counts = Counter()
    for cell in page.locator("table.labels-over-time td[data-label]").all():
        shown_counts[cell.get_attribute("data-label")] += int(cell.inner_text())
    assert shown_counts == expected and sum(expected.values()) == 2 * N
    stacked = defaultdict(float)
    for bar in page.locator("#labels svg.bars rect.bar").all():
        stacked[bar.get_attribute("data-stack")] += float(bar.get_attribute("data-value"))
    assert stacked == {k: float(v) for k, v in expected.items()}

    # Drawn, not just present: every chart has a size on screen.
    for chart in ("#quality svg.scatter", "#runs svg.bars", "#labels svg.bars"):
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 150, chart
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    if os.environ.get("CLAUDE_BATCH_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
    page.close()

    # Without gold labels (one test: the state takes minutes of dbt runs to build).
    without_gold(project, browser_context, tmp_path / "no-gold")


def without_gold(project, browser_context, tmp_path: Path) -> None:
    """The matrix is the latest calibration's; a missing relation or classifier is a clear error."""
    tmp_path.mkdir()
    proc, out = report(project, tmp_path)
    assert proc.returncode == 0, proc.stderr
    page, seen = open_page(browser_context, out)
    assert seen["errors"] == [] and seen["requests"] == [out.as_uri()]
    assert page.locator("table.confusion").get_attribute("data-kind") == "calibration"
    # The latest calibration's configured answers against one row per request, from its items.
    (cal,) = project.sql("SELECT calibration_id FROM claude_batch.cb_calibrations WHERE classifier = 'quality_sentiment' "
                         "AND status = 'collected' ORDER BY collected_at DESC LIMIT 1")[0:1]
    items = defaultdict(dict)
    for variant, text_hash, labels in project.sql(
            "SELECT variant, text_hash, labels FROM claude_batch.cb_calibration_items WHERE calibration_id = ? "
            "AND status = 'succeeded'", [cal[0]]):
        items[variant][text_hash] = ",".join(sorted(labels))
    counted = Counter((items["one_per_request"][h], items["as_configured"][h]) for h in items["as_configured"]
                      if h in items["one_per_request"])
    shown = {(c.locator("xpath=..").get_attribute("data-row"), c.get_attribute("data-col")): int(c.inner_text())
             for c in page.locator("table.confusion td").all()}
    assert {k: v for k, v in shown.items() if v} == dict(counted)
    assert page.locator("#quality svg.scatter g.point").count() == 10  # calibrations only
    page.close()

    proc, _ = report(project, tmp_path, "--evaluation", "main.no_such_table")
    assert proc.returncode == 2 and "main.no_such_table does not exist" in proc.stderr
    # Without --db: the file of the dbt project's profile, read by dbt (here an env_var of its path).
    proc = subprocess.run([sys.executable, "-m", "claude_batch.report", "--classifier", "quality_sentiment",
                           "--project-dir", str(project.project_dir), "--profiles-dir", str(project.project_dir),
                           "--out", str(tmp_path / "from-profile.html")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CLAUDE_BATCH_DUCKDB": str(project.db)})
    assert proc.returncode == 0 and f"({project.db})" in proc.stdout, proc.stderr
    assert (tmp_path / "from-profile.html").read_text(encoding="utf-8").count('class="point"') == 10
    proc = subprocess.run([sys.executable, "-m", "claude_batch.report", "--db", str(project.db), "--classifier", "nope",
                           "--out", str(tmp_path / "x.html")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "'nope' has no version" in proc.stderr and "quality_sentiment" in proc.stderr
    assert not (tmp_path / "x.html").exists()


def test_the_docs_screenshot_is_committed_and_shown():
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/report.png" in (REPO / "README.md").read_text(encoding="utf-8")


def test_a_multi_label_classifier_has_a_two_by_two_matrix_per_label(project, emulator, browser_context, tmp_path):
    """quality_topics (multi-label) built by dbt in this process; the report read in this process too (a
    second process could not open the file dbt-duckdb keeps open here), then rendered in the browser."""
    import duckdb

    from claude_batch import report
    from claude_batch.warehouse import Warehouse

    topics = ["billing", "shipping", "product"]
    rng = random.Random(4)
    truth = {i: sorted(rng.sample(topics, rng.choice([1, 1, 2])), key=topics.index) for i in range(1, 91)}
    texts = {i: f"ticket {i}: " + " and ".join(t) for i, t in truth.items()}
    project.write_table("quality_tickets", "id INTEGER, body VARCHAR", list(texts.items()))
    project.write_table("quality_topics_gold", "id INTEGER, labels VARCHAR[]", list(truth.items()))
    emulator.script({texts[i]: t for i, t in truth.items()})
    emulator.set_faults(answer_errors={"seed": 5, "base_error": 0.15, "confusion": "uniform"})
    for _ in range(3):
        project.dbt("run", select="quality_topics")
    project.dbt("run", select="quality_topics_eval quality_topics_confusion")

    con = duckdb.connect(str(project.db))
    try:
        data = report.read(Warehouse(con), "quality_topics", evaluation="main.quality_topics_eval",
                           confusion="main.quality_topics_confusion")
        cells = {(label, gold, predicted): n for label, gold, predicted, n in con.execute(
            "SELECT label, gold, predicted, row_count FROM main.quality_topics_confusion").fetchall()}
        per_label = Counter(label for labels, in con.execute(
            "SELECT labels FROM claude_batch.cb_current_results WHERE classifier = 'quality_topics' "
            "AND status = 'succeeded'").fetchall() for label in labels)
    finally:
        con.close()
    out = tmp_path / "topics.html"
    out.write_text(report.render(data), encoding="utf-8")
    page, seen = open_page(browser_context, out)
    assert seen["errors"] == [] and seen["requests"] == [out.as_uri()]
    shown = {(c.locator("xpath=..").get_attribute("data-row"), c.get_attribute("data-col")): int(c.inner_text())
             for c in page.locator("table.confusion td").all()}
    assert {k: n for k, n in shown.items() if n} == {
        (f"{label}: {'yes' if gold else 'no'}", "yes" if predicted else "no"): n for (label, gold, predicted), n in cells.items() if n}
    assert len(shown) == 2 * 2 * 3  # a 2x2 matrix per label
    shown_counts = Counter()
    for cell in page.locator("table.labels-over-time td[data-label]").all():
        shown_counts[cell.get_attribute("data-label")] += int(cell.inner_text())
    assert shown_counts == per_label and sum(per_label.values()) > 90  # several labels a row
    assert page.locator("#quality svg.scatter g.point").count() == 1  # the evaluated version
    page.close()
