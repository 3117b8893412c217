"""Gold-set evaluation in SQL (macros/evaluate, the accuracy_at_least test), through real dbt builds
of integration_tests/models/quality against the emulator with its error model on.

The truth the emulator perturbs is W1's gold label, scripted per sentence; the figures the macros
compute are checked against the same figures computed here in plain Python from the classifier's
table and the gold table (written out, no library), and the quality bar passes above the measured
accuracy and fails below it.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict

import pytest

import workloads  # bench/workloads.py
ERRORS = {"seed": 3, "base_error": 0.08, "pack_growth": 0.002, "position_growth": 0.004, "grouped_extra": 0.03,
          "confusion": {"positive": {"negative": 3, "neutral": 1}, "negative": {"positive": 1}}}
N = 400


@pytest.fixture(scope="module")
def gold_rows() -> list[tuple[int, str, str]]:
    if workloads.default_data_dir() is None:
        pytest.skip("W1 corpus not found")
    gold = workloads.load_w1_gold()
    texts = sorted(gold)
    random.Random(5).shuffle(texts)
    return [(i + 1, text, gold[text]) for i, text in enumerate(texts[:N])]


def build_until_done(project, model: str, vars: dict, runs: int = 4) -> None:
    for _ in range(runs):
        project.dbt("run", select=model, vars=vars)
        waiting = project.sql(f"SELECT count(*) FROM main.{model} WHERE status IN ('pending', 'in_flight', 'reclassifying')")[0][0]
        if not waiting:
            return
    raise AssertionError(f"{model}: rows still waiting after {runs} runs")


def fails_on_quality(result) -> bool:
    """dbt test ran and only the quality bar failed (a failure, not an error such as bad SQL)."""
    bad = [r for r in result.result if str(r.status) != "pass"]
    return not result.success and bool(bad) and all(
        str(r.status) == "fail" and "accuracy_at_least" in r.node.name for r in bad)


def python_figures(gold: dict[int, set], table: list[dict], multi: bool, names: list[str] = ()) -> dict:
    """Every figure of claude_batch_evaluate, per version, from its definitions (docs/quality.md)."""
    out = {}
    by_version = defaultdict(list)
    for row in table:
        if row["id"] in gold:
            by_version[row["classifier_version"]].append(row)
    for version, rows in by_version.items():
        predicted = {r["id"]: set(r["labels"] or []) if multi else ({r["label"]} if r["label"] else set()) for r in rows}
        labelled = [i for i, p in predicted.items() if p]
        n = len(labelled)
        correct = sum(predicted[i] == gold[i] for i in labelled)
        labels = sorted(set(names) | {x for i in labelled for x in gold[i] | predicted[i]})
        per = {}
        for label in labels:
            tp = sum(label in gold[i] and label in predicted[i] for i in labelled)
            support = sum(label in gold[i] for i in labelled)
            pred = sum(label in predicted[i] for i in labelled)
            fp, fn = pred - tp, support - tp
            tn = n - tp - fp - fn
            po = (tp + tn) / n
            pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
            per[label] = {
                "support": support, "predicted": pred, "true_positives": tp, "false_positives": fp,
                "false_negatives": fn, "true_negatives": tn,
                "precision": tp / pred if pred else None, "recall": tp / support if support else None,
                "f1": 2 * tp / (pred + support) if pred + support else None,
                "kappa": (po - pe) / (1 - pe) if pe < 1 else None,
            }
        accuracy = correct / n
        if multi:
            kappas = [p["kappa"] for p in per.values() if p["kappa"] is not None]
            kappa = sum(kappas) / len(kappas)
        else:
            pe = sum(per[x]["support"] * per[x]["predicted"] for x in labels) / (n * n)
            kappa = (accuracy - pe) / (1 - pe)

        def mean(key):
            values = [p[key] for p in per.values() if p[key] is not None]
            return sum(values) / len(values)

        cost = sum(r["cost_usd"] or 0 for r in rows)
        out[version] = {
            "overall": {"gold_rows": len(rows), "labelled_rows": n, "coverage": n / len(rows), "correct": correct,
                        "accuracy": accuracy, "kappa": kappa, "precision": mean("precision"),
                        "recall": mean("recall"), "f1": mean("f1"), "cost_usd": cost,
                        "cost_per_correct_usd": cost / correct},
            "labels": per,
        }
    return out


def sql_figures(project, model: str) -> dict:
    out = defaultdict(lambda: {"labels": {}})
    for row in project.dicts(f"SELECT * FROM main.{model}"):
        version = row.pop("classifier_version")
        if row.pop("scope") == "overall":
            out[version]["overall"] = row
        else:
            out[version]["labels"][row["label"]] = row
    return dict(out)


def assert_same(expected: dict, got: dict) -> None:
    for key, value in expected.items():
        if value is None or isinstance(value, int):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_single_label_figures_equal_an_independent_computation_and_the_bar_passes_or_fails(project, emulator, gold_rows):
    project.write_table("quality_reviews", "id INTEGER, body VARCHAR", [(i, t) for i, t, _ in gold_rows])
    project.write_table("quality_gold", "id INTEGER, label VARCHAR", [(i, g) for i, _, g in gold_rows])
    emulator.script({t: g for _, t, g in gold_rows})
    emulator.set_faults(answer_errors=ERRORS)
    build_until_done(project, "quality_sentiment", {})
    project.dbt("run", select="quality_sentiment_eval quality_sentiment_confusion")

    table = project.dicts("SELECT id, label, labels, classifier_version, cost_usd, status FROM main.quality_sentiment")
    assert Counter(r["status"] for r in table) == {"succeeded": N}
    gold = {i: {g} for i, _, g in gold_rows}
    expected = python_figures(gold, table, multi=False, names=["positive", "negative", "neutral"])
    got = sql_figures(project, "quality_sentiment_eval")
    assert set(got) == set(expected)
    for version, figures in expected.items():
        assert_same(figures["overall"], got[version]["overall"])
        assert set(got[version]["labels"]) == {"positive", "negative", "neutral"}  # neutral: no gold, named
        for label, per in figures["labels"].items():
            assert_same(per, got[version]["labels"][label])
    # The confusion matrix, counted here from the two tables.
    counted = Counter((r["classifier_version"], next(iter(gold[r["id"]])), r["label"]) for r in table)
    confusion = {(r["classifier_version"], r["gold_label"], r["predicted_label"]): r["row_count"]
                 for r in project.dicts("SELECT * FROM main.quality_sentiment_confusion")}
    assert confusion == dict(counted)
    assert all(g != "negative" or p != "neutral" for _, g, p in confusion)  # the error model's matrix

    # The emulator was wrong at the configured rate (20 rows a request; each row's place is its order
    # among the pending texts, unknown here, so the mean place is used: the rule is linear in it).
    overall = next(iter(got.values()))["overall"]
    mean_error = ERRORS["base_error"] + ERRORS["pack_growth"] * 19 + ERRORS["position_growth"] * 9.5 + ERRORS["grouped_extra"]
    se = (mean_error * (1 - mean_error) / N) ** 0.5
    assert abs((1 - overall["accuracy"]) - mean_error) < 4 * se
    assert overall["kappa"] < overall["accuracy"] < 1

    accuracy = overall["accuracy"]
    assert project.dbt("test", select="quality_sentiment", vars={"cb_min_accuracy": round(accuracy - 0.01, 4)}).success
    failed = project.dbt("test", select="quality_sentiment", vars={"cb_min_accuracy": round(accuracy + 0.01, 4)},
                         expect_ok=False)
    assert fails_on_quality(failed)
    # Per-label bars: recall of each label, as a mapping; one just above its value fails.
    recall = {label: per["recall"] for label, per in next(iter(got.values()))["labels"].items() if per["recall"]}
    below = {label: round(value - 0.01, 4) for label, value in recall.items()}
    assert project.dbt("test", select="quality_sentiment", vars={"cb_min_recall": json.dumps(below)}).success
    above = {**below, "negative": round(recall["negative"] + 0.01, 4)}
    failed = project.dbt("test", select="quality_sentiment", vars={"cb_min_recall": json.dumps(above)}, expect_ok=False)
    assert fails_on_quality(failed)
    assert [r.failures for r in failed.result if str(r.status) == "fail"] == [1]  # the one label below its bar


def test_multi_label_figures_and_confusion_matrices(project, emulator):
    topics = ["billing", "shipping", "product"]
    rng = random.Random(11)
    rows, truth = [], {}
    for i in range(1, 301):
        labels = sorted(rng.sample(topics, rng.choice([1, 1, 2, 3])), key=topics.index)
        text = f"ticket {i}: " + " and ".join(labels)
        rows.append((i, text))
        truth[i] = labels
    project.write_table("quality_tickets", "id INTEGER, body VARCHAR", rows)
    project.write_table("quality_topics_gold", "id INTEGER, labels VARCHAR[]", [(i, truth[i]) for i, _ in rows])
    emulator.script({text: truth[i] for i, text in rows})
    emulator.set_faults(answer_errors={"seed": 5, "base_error": 0.15, "confusion": "uniform"})
    build_until_done(project, "quality_topics", {})
    project.dbt("run", select="quality_topics_eval quality_topics_confusion")

    table = project.dicts("SELECT id, label, labels, classifier_version, cost_usd, status FROM main.quality_topics")
    gold = {i: set(v) for i, v in truth.items()}
    expected = python_figures(gold, table, multi=True)
    got = sql_figures(project, "quality_topics_eval")
    for version, figures in expected.items():
        assert_same(figures["overall"], got[version]["overall"])
        for label, per in figures["labels"].items():
            assert_same(per, got[version]["labels"][label])
        assert 0.75 < figures["overall"]["accuracy"] < 0.95  # 15 % of rows perturbed
        cells = {(r["label"], r["gold"], r["predicted"]): r["row_count"]
                 for r in project.dicts("SELECT * FROM main.quality_topics_confusion")}
        for label, per in figures["labels"].items():
            assert cells[(label, True, True)] == per["true_positives"]
            assert cells[(label, True, False)] == per["false_negatives"]
            assert cells[(label, False, True)] == per["false_positives"]
            assert cells[(label, False, False)] == per["true_negatives"]
    accuracy = next(iter(expected.values()))["overall"]["accuracy"]
    assert project.dbt("test", select="quality_topics", vars={"cb_min_accuracy": accuracy - 0.01}).success
    assert fails_on_quality(project.dbt("test", select="quality_topics", vars={"cb_min_f1": 0.99}, expect_ok=False))


def test_keyed_answers_end_to_end_are_parsed_in_sql_and_carry_no_grouped_extra(project, emulator, gold_rows):
    """The same rows under both answer formats (two classifier versions): every row succeeds through
    the batch path's SQL parser, and the grouped format's extra errors show as the difference."""
    project.write_table("quality_reviews", "id INTEGER, body VARCHAR", [(i, t) for i, t, _ in gold_rows])
    project.write_table("quality_gold", "id INTEGER, label VARCHAR", [(i, g) for i, _, g in gold_rows])
    emulator.script({t: g for _, t, g in gold_rows})
    emulator.set_faults(answer_errors={**ERRORS, "grouped_extra": 0.2})
    accuracy = {}
    for answer_format in ("keyed", "grouped"):
        vars = {"cb_answer_format": answer_format, "cb_reclassify": True}
        build_until_done(project, "quality_sentiment", vars)
        project.dbt("run", select="quality_sentiment_eval", vars=vars)
        table = project.dicts("SELECT status, classifier_version FROM main.quality_sentiment")
        assert Counter(r["status"] for r in table) == {"succeeded": N}
        assert len({r["classifier_version"] for r in table}) == 1
        accuracy[answer_format] = project.sql(
            "SELECT accuracy FROM main.quality_sentiment_eval WHERE scope = 'overall'")[0][0]
    assert accuracy["keyed"] - accuracy["grouped"] == pytest.approx(0.2, abs=4 * (0.2 * 0.8 / N) ** 0.5)
