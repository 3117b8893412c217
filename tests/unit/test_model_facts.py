"""The model-facts data file (python_udfs/claude_batch/_data/models.json) is well-formed.

Next month's model is one entry in that file: these checks are what such a change must pass.
"""

from __future__ import annotations

from datetime import date

import pytest

from claude_batch import catalog, prompts

DATA = catalog.data()
FACT_GROUPS = ("lifecycle", "limits", "prices", "min_cacheable_tokens", "tokenizer", "thinking", "effort",
               "forced_tool_use", "json_schema_output", "assistant_prefill")
MODEL_KEYS = {"id", "aliases", "display_name", "line", "released", "lifecycle", "deprecated_on", "retires_on",
              "replacement", "context_window", "max_output_tokens", "prices", "min_cacheable_tokens", "tokenizer",
              "thinking", "effort", "forced_tool_use", "json_schema_output", "assistant_prefill", "sources"}


def test_file_has_its_date_and_source_keys():
    assert catalog.AS_OF == date.fromisoformat(DATA["as_of"])
    assert DATA["source_keys"] and all(isinstance(v, str) and v for v in DATA["source_keys"].values())
    assert 0 < catalog.BATCH_DISCOUNT <= 1 and DATA["batch_discount"]["source"]
    for name, tokenizer in DATA["tokenizers"].items():
        assert tokenizer["ratio"] >= 1.0 and tokenizer["source"], name


@pytest.mark.parametrize("entry", DATA["models"], ids=[m["id"] for m in DATA["models"]])
def test_every_model_entry_is_complete_and_sourced(entry):
    assert set(entry) == MODEL_KEYS, f"{entry['id']}: keys differ by {set(entry) ^ MODEL_KEYS}"
    assert entry["lifecycle"] in catalog.LIFECYCLES
    for key in ("released", "deprecated_on", "retires_on"):
        if entry[key] is not None:
            date.fromisoformat(entry[key])
    if entry["lifecycle"] in ("deprecated", "retired"):
        assert entry["retires_on"], f"{entry['id']}: a {entry['lifecycle']} model needs its retirement date"
    assert entry["context_window"] > 0 and entry["max_output_tokens"] > 0
    # Every fact group names where it came from.
    assert set(FACT_GROUPS) <= set(entry["sources"]), f"{entry['id']}: unsourced {set(FACT_GROUPS) - set(entry['sources'])}"
    assert all(isinstance(v, str) and v.strip() for v in entry["sources"].values())
    # Price bands ascend by prompt length; the last has no upper bound; every price is set.
    bands = entry["prices"]
    assert bands and bands[-1]["up_to_prompt_tokens"] is None
    edges = [b["up_to_prompt_tokens"] for b in bands[:-1]]
    assert edges == sorted(edges) and all(isinstance(e, int) and e > 0 for e in edges)
    for band in bands:
        for key in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
            assert band[key] >= 0, (entry["id"], key)
        assert band["cache_read"] < band["input"] < band["cache_write_5m"] <= band["cache_write_1h"]
    assert entry["tokenizer"] in DATA["tokenizers"]
    thinking = entry["thinking"]
    assert thinking["default"] in ("off", "adaptive", "always")
    assert set(thinking["types"]) == set(catalog.THINKING_TYPES)
    assert thinking["off_max_effort"] in (None, *catalog.EFFORT_LEVELS)
    if thinking["default"] == "always":
        assert not thinking["types"]["disabled"], f"{entry['id']}: always thinks, yet disabled is accepted"
    effort = entry["effort"]
    assert effort["default"] in (None, *catalog.EFFORT_LEVELS)
    assert effort["supported"] or effort["default"] is None
    if entry["replacement"] is not None:
        assert catalog.is_known(entry["replacement"]), f"{entry['id']}: replacement {entry['replacement']!r} unknown"


def test_ids_and_aliases_are_unique_across_the_file():
    names = [n for m in DATA["models"] for n in (m["id"], *m["aliases"])]
    names += [n for r in DATA["retired"] for n in (r["id"], *r["aliases"])]
    assert len(names) == len(set(names))
    for entry in DATA["retired"]:
        date.fromisoformat(entry["retires_on"])
        assert entry["source"]


def test_api_versions_say_what_they_reject():
    versions = DATA["api_versions"]["versions"]
    assert DATA["api_versions"]["default"] in versions
    for name, rules in versions.items():
        date.fromisoformat(name)
        assert rules["source"]
        assert set(rules["rejects_params"]) <= {"temperature", "top_p", "top_k"}
    assert set(versions["2026-10-21"]["rejects_params"]) == {"temperature", "top_p", "top_k"}  # [MIG]


def test_lifecycle_follows_the_calendar():
    sonnet_45 = catalog.model_info("claude-sonnet-4-5-20250929")
    assert sonnet_45.lifecycle_on(date(2026, 11, 29)) == "deprecated"
    assert sonnet_45.lifecycle_on(date(2026, 11, 30)) == "retired"
    assert catalog.retirement("claude-sonnet-4-5", date(2026, 12, 3)) == (date(2026, 11, 30), "claude-sonnet-5-5")
    assert catalog.retirement("claude-opus-4-5", date(2026, 12, 3)) is None
    assert catalog.retirement("claude-opus-4-5", date(2027, 1, 22)) == (date(2027, 1, 22), "claude-opus-5-5")
    assert catalog.retirement("claude-3-5-haiku-latest", date(2026, 12, 3))[1] == "claude-haiku-5-5"
    assert catalog.retirement("claude-haiku-5-5", date(2030, 1, 1)) is None


def test_haiku_5_5_prices_by_band():
    info = catalog.model_info("claude-haiku-5-5")
    assert info.band(100_000).input == 0.10 and info.band(100_001).input == 0.50  # [H55]


@pytest.mark.parametrize("model", sorted(catalog.MODELS))
def test_thinking_plan_is_one_the_model_accepts(model):
    """What a classifier sends about thinking is, by the model's own facts, accepted (the emulator
    tests send each of these for real)."""
    info = catalog.model_info(model)
    plan = prompts.thinking_plan(info)
    if plan.param is not None:
        assert info.thinking_types[plan.param["type"]]
    if plan.effort is not None:
        assert info.effort_supported
    assert plan.thinks == (info.thinking_default != "off" and plan.param is None)
