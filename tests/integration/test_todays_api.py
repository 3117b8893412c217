"""Issue 12: the product on today's API (version 2026-10-21, today's models), with real `dbt build`
runs against the emulator, which enforces what the API refuses (so a stray parameter fails here)."""

from __future__ import annotations

import json

import pytest

from claude_batch import catalog

REVIEWS = [
    (1, "I love it, works perfectly, highly recommend"),
    (2, "Terrible. It broke after two days, I want a refund"),
    (3, "It arrived on Tuesday."),
    (4, "Excellent quality, great value"),
    (5, "Worst purchase ever, awful and disappointed"),
    (6, "Great phone, love the screen"),
]
EXPECTED = {1: "positive", 2: "negative", 4: "positive", 5: "negative", 6: "positive"}


def received(emulator) -> list[dict]:
    return emulator.received()


def labels(project) -> dict:
    return {k: r["label"] for k, r in project.table().items()}


def test_default_model_is_haiku_5_5_with_thinking_off_and_no_sampling(project, emulator):
    project.add_reviews(REVIEWS)
    project.dbt()
    project.dbt()
    got = project.table()
    assert {k: got[k]["label"] for k in EXPECTED} == EXPECTED
    assert {r["model"] for r in got.values()} == {"claude-haiku-5-5"}
    params = [rec["settings"] for rec in received(emulator)]
    assert params, "the emulator saw no request"
    for p in params:
        assert not {"temperature", "top_p", "top_k"} & set(p)  # refused by 2026-10-21 even at defaults [MIG]
        assert p["thinking"] == {"type": "disabled"} and p["effort"] == "low"  # [H55P]
    thinking = project.sql("SELECT sum(thinking_tokens), sum(output_tokens) FROM claude_batch.cb_requests")[0]
    assert thinking[0] == 0 and thinking[1] > 0


def test_a_model_that_cannot_stop_thinking_pays_for_it_and_still_labels_right(project, emulator):
    """Opus 5.5 always thinks [O55]: the answer comes after a thinking block, max_tokens leaves room for
    it, and its tokens are billed as output in every cost table."""
    project.add_reviews(REVIEWS)
    vars = {"cb_model": "claude-opus-5-5"}
    project.dbt(vars=vars)
    project.dbt(vars=vars)
    got = project.table()
    assert {k: got[k]["label"] for k in EXPECTED} == EXPECTED
    assert {r["status"] for r in got.values()} == {"succeeded"}
    params = [rec["settings"] for rec in received(emulator)]
    assert params and all("thinking" not in p and p["effort"] == "low" for p in params)
    assert all(p["max_tokens"] > 4096 for p in params)  # room for thinking it cannot turn off
    thinking, output, billed = project.sql(
        "SELECT sum(thinking_tokens), sum(output_tokens), sum(billed_usd) FROM claude_batch.cb_requests")[0]
    assert 0 < thinking < output
    by_batch = project.sql("SELECT sum(thinking_tokens), sum(billed_usd) FROM claude_batch.cb_cost_by_batch")[0]
    assert by_batch[0] == thinking and by_batch[1] == pytest.approx(billed)
    # Every output token (thinking included) is in the bill: at Opus 5.5 batch prices [O55][PRC].
    tokens = project.sql("""SELECT sum(input_tokens), sum(cache_write_5m_tokens), sum(cache_write_1h_tokens),
                                   sum(cache_read_tokens) FROM claude_batch.cb_requests""")[0]
    band = catalog.model_info("claude-opus-5-5").prices[0]
    expected = (tokens[0] * band.input + tokens[1] * band.cache_write_5m + tokens[2] * band.cache_write_1h
                + tokens[3] * band.cache_read + output * band.output) * catalog.BATCH_DISCOUNT / 1e6
    assert billed == pytest.approx(expected)
    assert sum(r["cost_usd"] for r in got.values()) == pytest.approx(billed)


@pytest.mark.parametrize("setting", ["temperature", "top_p"])
def test_sampling_setting_fails_the_run_before_anything_is_sent(emulator, setting):
    from claude_batch import config

    with pytest.raises(config.ConfigError, match=rf"\['{setting}'\].*2026-10-21.*2023-06-01"):
        config.build_config("m", key="id", text="t", labels=["a", "b"], instructions="i", **{setting: 0.5})
    assert emulator.received() == []


def test_pinned_2023_06_01_sends_temperature_where_the_model_takes_it(project, emulator):
    """With api_version pinned, the header goes out on every call and the sampling parameter is sent;
    models from Claude 4.7 on would still refuse a non-default value, so this runs on Haiku 4.5."""
    project.add_reviews(REVIEWS[:3])
    vars = {"cb_model": "claude-haiku-4-5", "cb_api_version": "2023-06-01"}
    result = project.dbt_cli(vars={**vars, "cb_temperature": 0.0})
    assert result.returncode == 0, result.stdout[-3000:]
    project.dbt_cli(vars={**vars, "cb_temperature": 0.0})
    params = [rec["settings"] for rec in received(emulator)]
    assert params and all(p.get("temperature") == 0.0 for p in params)
    assert {r["status"] for r in project.table().values()} == {"succeeded"}


def test_retired_model_fails_at_the_start_naming_date_and_replacement(project, emulator):
    project.add_reviews(REVIEWS)
    result = project.dbt_cli(vars={"cb_model": "claude-sonnet-4-5"})
    assert result.returncode != 0
    assert "retired on 2026-11-30" in result.stdout and "claude-sonnet-5-5" in result.stdout
    assert emulator.received() == []


def test_unknown_model_that_the_api_does_not_know_fails_naming_the_setting(project, emulator):
    project.add_reviews(REVIEWS)
    result = project.dbt_cli(vars={"cb_model": "claude-nope-9"})
    assert result.returncode != 0
    assert "setting 'model'" in result.stdout and "claude-nope-9" in result.stdout and "404" in result.stdout
    assert emulator.received() == []


def test_preflight_rejects_a_bad_configuration_before_any_batch(project, emulator):
    """A parameter the API refuses (here temperature, smuggled in through `extra`) fails the run at once
    with the API's message: one real-time call, no batch, the rows pending for the next run."""
    project.add_reviews(REVIEWS)
    result = project.dbt_cli(vars={"cb_preflight": "auto", "cb_extra": json.dumps({"temperature": 0.0})})
    assert result.returncode != 0
    assert "preflight" in result.stdout and "temperature" in result.stdout
    calls = received(emulator)
    assert len(calls) == 1 and calls[0]["batch"] == "messages"  # one Messages call, no batch created
    assert project.sql("SELECT count(*) FROM claude_batch.cb_batches WHERE mode = 'batch'")[0][0] == 0
    assert project.sql("SELECT status FROM claude_batch.cb_preflights")[0][0] == "rejected"
    # Fixed, the next run sends every row (none was marked as failed by the refusal).
    project.dbt(vars={"cb_preflight": "auto"})
    project.dbt(vars={"cb_preflight": "auto"})
    assert {k: r["label"] for k, r in project.table().items() if k in EXPECTED} == EXPECTED


def test_preflight_answer_is_kept_and_never_paid_twice(project, emulator):
    project.add_reviews(REVIEWS)
    vars = {"cb_preflight": "auto", "cb_pack_size": 2}
    project.dbt(vars=vars)
    first = project.table()
    preflight_rows = [k for k, r in first.items() if r["status"] == "succeeded"]
    assert len(preflight_rows) == 2  # the first pack, answered in real time
    assert all(first[k]["batch_id"].startswith("rt_") for k in preflight_rows)
    assert sum(r["status"] == "in_flight" for r in first.values()) == 4  # the rest went as a batch
    assert project.sql("SELECT status FROM claude_batch.cb_preflights")[0][0] == "passed"
    project.dbt(vars=vars)
    texts = [t for rec in received(emulator) for t in rec["rows"]]
    assert sorted(texts) == sorted(t for _, t in REVIEWS)  # each text sent once, preflight included
    assert {k: r["label"] for k, r in project.table().items() if k in EXPECTED} == EXPECTED
    # The same version does not preflight again.
    project.add_reviews([(7, "Broke in a week, terrible")])
    project.dbt(vars=vars)
    assert project.sql("SELECT count(*) FROM claude_batch.cb_preflights")[0][0] == 1


def test_a_batch_refused_whole_fails_the_run_loudly(project, emulator):
    """Without the preflight, a request the API refuses comes back invalid_request_error on every row
    when the batch ends: the run that collects it fails, saying so, instead of passing."""
    project.add_reviews(REVIEWS)
    vars = {"cb_extra": json.dumps({"temperature": 0.0})}
    project.dbt(vars=vars)  # submitted; the API checks batch requests only when it processes them [MIG]
    result = project.dbt(vars=vars, expect_ok=False)
    assert not result.success
    message = " ".join(str(r.message) for r in result.result)
    assert "refused every request of a batch" in message and "temperature" in message
    # Collected and accounted all the same: nothing is lost.
    assert project.sql("SELECT count(*) FROM claude_batch.cb_requests WHERE error_type = 'invalid_request_error'")[0][0] > 0


# ---------------------------------------------------------------------------- every model we know

def _todays_models() -> list[str]:
    return sorted(m for m, info in catalog.MODELS.items() if info.lifecycle_on(catalog.AS_OF) != "retired")


@pytest.mark.parametrize("model", _todays_models())
def test_our_requests_are_accepted_for_every_model_in_the_table(emulator, model):
    """The classifier's request for each model, as built for a batch and for a real-time call, goes
    through the real SDK to an emulator that refuses what API version 2026-10-21 and the model refuse."""
    from claude_batch import config, prompts

    cfg = config.build_config("every_model", key="id", text="t", model=model, instructions="Sentiment.",
                              labels={"positive": "likes it", "negative": "dislikes it"})
    items = [(1, "I love it"), (2, "It broke, terrible")]
    params = prompts.build_params(cfg.spec, items, cache=True)
    client = emulator.client()
    message = client.post("/v1/messages", body=params, cast_to=object)
    outcomes, _ = prompts.parse_answer(cfg.spec, message["content"], [1, 2])
    assert [o.status for o in outcomes] == ["succeeded", "succeeded"], message
    info = catalog.model_info(model)
    thinks = prompts.thinking_plan(info).thinks
    assert (message["content"][0]["type"] == "thinking") == thinks  # the answer is found by type, not place
    assert (message["usage"]["output_tokens_details"]["thinking_tokens"] > 0) == thinks
    batch = client.messages.batches.create(requests=[{"custom_id": "r1", "params": params}])
    emulator.wait_idle()
    [line] = list(client.messages.batches.results(batch.id))
    assert line.result.type == "succeeded", line.result


# ---------------------------------------------------------------------------- a model we do not know

@pytest.fixture
def next_months_emulator(tmp_path):
    """The emulator in its own process, knowing a model our table lacks (as the API will next month)."""
    import re
    import subprocess
    import sys

    entry = dict(next(m for m in catalog.data()["models"] if m["id"] == "claude-haiku-5-5"))
    entry.update(id="claude-haiku-6", display_name="Claude Haiku 6", aliases=[], released="2026-12-01")
    extra = tmp_path / "extra_models.json"
    extra.write_text(json.dumps([entry]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_batch.emulator", "--port", "0", "--state-dir", str(tmp_path / "emu"),
         "--processing-seconds", "0", "--extra-models", str(extra)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://[0-9.]+:\d+", line)
    assert match, line
    yield match.group(0)
    proc.terminate()
    proc.wait(10)


def test_a_model_only_the_api_knows_runs_priced_from_config(tmp_path, next_months_emulator, project):
    DbtProject = type(project)  # the integration conftest's project class, on the other emulator
    assert not catalog.is_known("claude-haiku-6")
    (tmp_path / "priced").mkdir()
    project = DbtProject(tmp_path / "priced", next_months_emulator)
    project.add_reviews(REVIEWS)
    vars = {"cb_model": "claude-haiku-6", "cb_prices": json.dumps({"input": 0.2, "output": 1.0})}
    first = project.dbt_cli(vars=vars)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "'claude-haiku-6' is not in our table" in first.stdout and "priced from the 'prices' setting" in first.stdout
    assert project.dbt_cli(vars=vars).returncode == 0
    got = project.table()
    assert {k: got[k]["label"] for k in EXPECTED} == EXPECTED
    # The setting's prices; cache prices by the documented multipliers of input (5m write 1.25x, 1h
    # write 2x, read 0.1x) [PRC]; batch requests at half, the preflight's real-time one at full price.
    expected, billed = project.sql(
        """SELECT sum((input_tokens * 0.2 + cache_write_5m_tokens * 0.25 + cache_write_1h_tokens * 0.4
                       + cache_read_tokens * 0.02 + output_tokens * 1.0)
                      * CASE WHEN service_tier = 'batch' THEN 0.5 ELSE 1.0 END) / 1e6, sum(billed_usd)
           FROM claude_batch.cb_requests WHERE status = 'succeeded'""")[0]
    assert billed > 0 and billed == pytest.approx(expected, rel=1e-9)
    assert sum(r["cost_usd"] for r in got.values()) == pytest.approx(billed)


def test_a_model_only_the_api_knows_without_prices_has_null_costs(tmp_path, next_months_emulator, project):
    DbtProject = type(project)  # the integration conftest's project class, on the other emulator
    (tmp_path / "unpriced").mkdir()
    project = DbtProject(tmp_path / "unpriced", next_months_emulator)
    project.add_reviews(REVIEWS)
    vars = {"cb_model": "claude-haiku-6"}
    first = project.dbt_cli(vars=vars)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "it has no prices: cost columns are NULL" in first.stdout
    project.dbt_cli(vars=vars)
    got = project.table()
    assert {k: got[k]["label"] for k in EXPECTED} == EXPECTED
    assert all(r["cost_usd"] is None for r in got.values())
    assert project.sql("SELECT count(*), count(billed_usd) FROM claude_batch.cb_requests WHERE status = 'succeeded'")[0][1] == 0
