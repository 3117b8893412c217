"""The emulator's error model (errormodel.py), through the real SDK over HTTP.

The truth is W1's gold label (the corpus's label column), scripted per sentence; the error model is
then switched on with known rates and the measured accuracy, agreement, unsure share and confusions
are compared with what the documented rule predicts, written out here independently of the
emulator's code, within sampling error (4 standard errors).
"""

from __future__ import annotations

import math

import pytest

from claude_batch import prompts
import workloads  # bench/workloads.py
from claude_batch.emulator.errormodel import ErrorModel
from conftest import results_by_id, wait_ended

HAIKU, SONNET = "claude-haiku-5-5", "claude-sonnet-5-5"
LABELS = (prompts.Label("positive", "favourable"), prompts.Label("negative", "unfavourable"),
          prompts.Label("neutral", "no opinion"), prompts.Label("unsure", "cannot tell"))
CONFIG = {
    "seed": 7,
    "base_error": 0.2,
    "models": {HAIKU: 0.04},
    "pack_growth": 0.002,
    "position_growth": 0.01,
    "grouped_extra": 0.03,
    "unsure_rate": 0.05,
    "confusion": {"positive": {"negative": 3, "neutral": 1}, "negative": {"positive": 1}},
}


def spec(model: str = HAIKU, answer_format: str = "grouped", labels=LABELS) -> prompts.PromptSpec:
    return prompts.PromptSpec(model=model, instructions="Label the sentiment of each review.", labels=labels,
                              answer_format=answer_format)


def expected_error(config: dict, model: str, pack: int, position: int, grouped: bool) -> float:
    """docs/emulator.md's rule, written out again (not imported from the emulator)."""
    base = config.get("models", {}).get(model, config.get("base_error", 0))
    p = (base + config.get("pack_growth", 0) * (pack - 1) + config.get("position_growth", 0) * (position - 1)
         + (config.get("grouped_extra", 0) if grouped and pack > 1 else 0))
    return min(config.get("max_error", 1.0), p)


@pytest.fixture(scope="module")
def gold() -> dict[str, str]:
    if workloads.default_data_dir() is None:
        pytest.skip("W1 corpus not found")
    return workloads.load_w1_gold()


def classify(client, the_spec, texts: list[str], pack: int) -> dict[str, tuple[tuple[str, ...], int]]:
    """One batch, ``pack`` rows a request: text -> (labels, the row's position in its pack)."""
    requests, where = [], {}
    for start in range(0, len(texts), pack):
        chunk = texts[start:start + pack]
        cid = f"p{start}"
        requests.append({"custom_id": cid, "params": prompts.build_params(the_spec, list(enumerate(chunk, 1)), cache=False)})
        where[cid] = chunk
    batch = client.messages.batches.create(requests=requests)
    wait_ended(client, batch.id, timeout=120)
    out = {}
    for cid, result in results_by_id(client, batch.id).items():
        assert result.type == "succeeded"
        content = [block.model_dump() for block in result.message.content]
        outcomes, _ = prompts.parse_answer(the_spec, content, range(1, len(where[cid]) + 1))
        for outcome, text in zip(outcomes, where[cid]):
            out[text] = (outcome.labels if outcome.status == "succeeded" else (), outcome.item_id)
    return out


def within(measured: float, expected: float, n: int) -> None:
    se = math.sqrt(max(expected * (1 - expected), 1e-4) / n)
    assert abs(measured - expected) <= 4 * se, f"measured {measured:.4f}, expected {expected:.4f} +- {4 * se:.4f} (n={n})"


def test_off_by_default_and_with_no_rates_every_row_gets_its_truth(emulator, client, gold):
    texts = sorted(gold)[:400]
    emulator.script({t: gold[t] for t in texts})
    assert classify(client, spec(), texts, 20) == classify(client, spec(), texts, 20)
    got = classify(client, spec(), texts, 20)
    assert all(got[t][0] == (gold[t],) for t in texts)
    emulator.set_faults(answer_errors={})
    got = classify(client, spec(), texts, 20)
    assert all(got[t][0] == (gold[t],) for t in texts)


def test_measured_accuracy_unsure_share_confusion_and_agreement_match_the_configured_rates(emulator, client, gold):
    texts = sorted(gold)
    n = len(texts)
    emulator.script({t: gold[t] for t in texts})
    emulator.set_faults(answer_errors=CONFIG)
    one = classify(client, spec(), texts, 1)  # 2,982 requests: answered by the helper processes
    packed = classify(client, spec(), texts, 20)
    if emulator.server.worker.processes > 1:  # the pack-1 batch went through the helpers' copy of the model
        assert emulator.stats()["batches_computed_in_helper_processes"] == 1

    for got, pack in ((one, 1), (packed, 20)):
        unsure = [t for t in texts if got[t][0] == ("unsure",)]
        wrong = [t for t in texts if got[t][0] not in ((gold[t],), ("unsure",))]
        within(len(unsure) / n, CONFIG["unsure_rate"], n)
        expected = sum(expected_error(CONFIG, HAIKU, pack, got[t][1], True) for t in texts) / n
        within(len(wrong) / n, expected, n)
        # Confusions follow the matrix: a wrong negative is always positive; a wrong positive is
        # negative three times in four, else neutral.
        assert {got[t][0] for t in wrong if gold[t] == "negative"} <= {("positive",)}
        wrong_pos = [t for t in wrong if gold[t] == "positive"]
        within(sum(got[t][0] == ("negative",) for t in wrong_pos) / len(wrong_pos), 0.75, len(wrong_pos))

    # Errors grow with the position: first five places against the last five.
    for places in (range(1, 6), range(16, 21)):
        rows = [t for t in texts if packed[t][1] in places]
        measured = sum(packed[t][0] not in ((gold[t],), ("unsure",)) for t in rows) / len(rows)
        within(measured, sum(expected_error(CONFIG, HAIKU, 20, k, True) for k in places) / len(places), len(rows))

    # Agreement with one row per request: errors are nested (a row wrong alone is wrong, the same
    # way, in the pack), so the disagreement is the difference of the error rates.
    assert all(packed[t][0] == one[t][0] for t in texts if one[t][0] != (gold[t],))
    differ = sum(packed[t][0] != one[t][0] for t in texts) / n
    expected = sum(expected_error(CONFIG, HAIKU, 20, packed[t][1], True)
                   - expected_error(CONFIG, HAIKU, 1, 1, True) for t in texts) / n
    within(differ, expected, n)


def test_keyed_answers_carry_the_same_errors_without_the_grouped_extra(emulator, client, gold):
    texts = sorted(gold)
    n = len(texts)
    emulator.script({t: gold[t] for t in texts})
    emulator.set_faults(answer_errors=CONFIG)
    keyed = classify(client, spec(answer_format="keyed"), texts, 20)
    grouped = classify(client, spec(), texts, 20)
    wrong = [t for t in texts if keyed[t][0] not in ((gold[t],), ("unsure",))]
    within(len(wrong) / n, sum(expected_error(CONFIG, HAIKU, 20, keyed[t][1], False) for t in texts) / n, n)
    assert all(grouped[t][0] == keyed[t][0] for t in wrong)  # nested: wrong keyed, wrong the same way grouped
    within(sum(grouped[t][0] != keyed[t][0] for t in texts) / n, CONFIG["grouped_extra"], n)
    one_keyed, one_grouped = (classify(client, spec(answer_format=f), texts[:500], 1) for f in ("keyed", "grouped"))
    assert one_keyed == one_grouped  # one row a request: the same question in either format


def test_per_model_base_rate_and_the_seed(emulator, client, gold):
    texts = sorted(gold)
    emulator.script({t: gold[t] for t in texts})
    emulator.set_faults(answer_errors=CONFIG)
    sonnet = classify(client, spec(SONNET), texts, 10)
    wrong = sum(sonnet[t][0] not in ((gold[t],), ("unsure",)) for t in texts) / len(texts)
    within(wrong, sum(expected_error(CONFIG, SONNET, 10, sonnet[t][1], True) for t in texts) / len(texts), len(texts))
    assert wrong > 0.2  # Sonnet here is the unlisted model, at base_error
    haiku = classify(client, spec(HAIKU), texts, 10)
    emulator.set_faults(answer_errors={**CONFIG, "seed": 8})
    reseeded = classify(client, spec(HAIKU), texts, 10)
    assert haiku != reseeded and set(haiku) == set(reseeded)


def test_a_batch_keeps_the_error_model_it_was_created_with(emulator, client, gold):
    texts = sorted(gold)[:200]
    emulator.script({t: gold[t] for t in texts})
    emulator.pause_worker()
    emulator.set_faults(answer_errors={"base_error": 1.0})
    requests = [{"custom_id": "only", "params": prompts.build_params(spec(), list(enumerate(texts, 1)), cache=False)}]
    batch = client.messages.batches.create(requests=requests)
    emulator.set_faults({})
    emulator.resume_worker()
    wait_ended(client, batch.id)
    content = [b.model_dump() for b in results_by_id(client, batch.id)["only"].message.content]
    outcomes, _ = prompts.parse_answer(spec(), content, range(1, len(texts) + 1))
    assert all(o.labels != (gold[t],) for o, t in zip(outcomes, texts))


def test_real_time_messages_use_the_live_configuration(emulator, client, gold):
    texts = sorted(gold)[:30]
    emulator.script({t: gold[t] for t in texts})
    params = prompts.build_params(spec(), list(enumerate(texts, 1)), cache=False)
    truth = [(gold[t],) for t in texts]

    def labels() -> list[tuple[str, ...]]:
        message = client.messages.create(**params)
        outcomes, _ = prompts.parse_answer(spec(), [b.model_dump() for b in message.content], range(1, 31))
        return [o.labels for o in outcomes]

    assert labels() == truth
    emulator.set_faults(answer_errors={"base_error": 1.0, "confusion": {"positive": {"neutral": 1}, "negative": {"neutral": 1}}})
    assert labels() == [("neutral",)] * 30


def test_unsure_without_an_unsure_label_is_the_neutral_one_else_the_row_is_left_out(emulator, client, gold):
    texts = sorted(gold)[:100]
    emulator.script({t: gold[t] for t in texts})
    emulator.set_faults(answer_errors={"unsure_rate": 1.0})
    with_neutral = spec(labels=LABELS[:3])
    assert {v[0] for v in classify(client, with_neutral, texts, 10).values()} == {("neutral",)}
    assert {v[0] for v in classify(client, spec(labels=LABELS[:2]), texts, 10).values()} == {()}  # all missing


@pytest.mark.parametrize("bad", [
    {"base_eror": 0.1}, {"base_error": 1.5}, {"base_error": "0.1"}, {"models": {"x": -0.1}},
    {"confusion": "random"}, {"confusion": {"positive": {"negative": -1}}}, {"seed": 1.5}, {"unsure_label": ""},
])
def test_bad_configurations_are_refused_naming_the_key(emulator, bad):
    with pytest.raises(ValueError, match="answer_errors"):
        emulator.set_faults(answer_errors=bad)
    import httpx2 as httpx

    response = httpx.post(f"{emulator.base_url}/_emulator/faults", json={"answer_errors": bad})
    assert response.status_code == 400 and "answer_errors" in response.text


def test_the_rule_is_deterministic_and_nested_without_http():
    model = ErrorModel.from_config(CONFIG)
    allowed = ("positive", "negative", "neutral")
    texts = [f"review number {i}" for i in range(3000)]

    def answer(text: str, pack: int, position: int, grouped: bool = True):
        return model.perturb(["positive"], allowed, model=HAIKU, text=text, pack_size=pack, position=position,
                             grouped=grouped, neutral="neutral")

    assert [answer(t, 50, 7) for t in texts] == [answer(t, 50, 7) for t in texts]
    for t in texts:  # wrong in a small pack early on: wrong the same way later in a bigger one
        if answer(t, 10, 2) != ["positive"]:
            assert answer(t, 50, 30) == answer(t, 10, 2)
        if answer(t, 50, 30, grouped=False) != ["positive"]:
            assert answer(t, 50, 30, grouped=True) == answer(t, 50, 30, grouped=False)
    assert model.error_rate(HAIKU, 1, 1, True) == model.error_rate(HAIKU, 1, 1, False) == 0.04
    assert model.error_rate(HAIKU, 50, 50, True) == pytest.approx(0.04 + 0.098 + 0.49 + 0.03)
    assert ErrorModel.from_config({"base_error": 0.5, "pack_growth": 0.1, "max_error": 0.6}).error_rate("m", 10, 1, False) == 0.6
    multi = ErrorModel.from_config({"base_error": 1.0, "confusion": {"billing": {"shipping": 1}, "shipping": {"billing": 1}}})
    both = multi.perturb(["billing", "shipping"], ("billing", "shipping", "product"), model=HAIKU, text="x",
                         pack_size=1, position=1, grouped=True, neutral=None)
    assert both in (["billing"], ["shipping"])  # the replacement was already there: that label is dropped
