"""The two answer formats: grouped by label (default) and keyed by row id (``answer_format: keyed``)."""

import json

import pytest

from claude_batch import prompts, tokens
import workloads  # bench/workloads.py
from claude_batch.config import ConfigError, build_config, classifier_version
from claude_batch.emulator.responder import Responder

BASE = dict(key="id", text="body", labels={"positive": "good", "negative": "bad", "neutral": "meh"},
            instructions="Classify.", examples=[("great", "positive"), ("awful", "negative")])


def objects(schema):
    """Every object node of a JSON schema."""
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from objects(value)


def test_the_setting_is_checked_and_is_part_of_the_classifier_version():
    grouped = build_config("m", None, **BASE)
    keyed = build_config("m", {"answer_format": "keyed"}, **BASE)
    assert grouped.spec.answer_format == "grouped" and keyed.spec.answer_format == "keyed"
    assert grouped.version != keyed.version
    # The default is the grouped format, byte for byte: existing versions keep their hash.
    assert grouped.version == build_config("m", {"answer_format": "grouped"}, **BASE).version
    assert classifier_version(workloads.w1_spec()) == build_config(
        "w1", None, key="id", text="body", model=workloads.W1_MODEL, instructions=workloads.W1_INSTRUCTIONS,
        labels={x.name: x.description for x in workloads.W1_LABELS},
        examples=[(e.text, e.labels[0]) for e in workloads.W1_EXAMPLES]).version
    with pytest.raises(ConfigError, match="answer_format"):
        build_config("m", {"answer_format": "by_row"}, **BASE)


@pytest.mark.parametrize("multi", [False, True])
def test_keyed_schema_enforces_the_labels_with_an_enum_and_closes_every_object(multi):
    spec = build_config("m", {"answer_format": "keyed", "multi_label": multi}, **BASE).spec
    schema = prompts.answer_schema(spec)
    entry = schema["properties"]["rows"]["items"]
    key = "labels" if multi else "label"
    assert entry["required"] == ["id", key]
    label = entry["properties"][key]["items"] if multi else entry["properties"][key]
    assert label["enum"] == ["positive", "negative", "neutral"]
    # Anthropic's structured outputs want additionalProperties: false on every object (docs/quality.md).
    assert all(node.get("additionalProperties") is False for node in objects(schema))
    system = prompts.system_text(spec)
    assert '"rows":[{"id":<row id>' in system and "every row id exactly once" in system
    example = '{"rows":[{"id":1,"labels":["positive"]},{"id":2,"labels":["negative"]}]}' if multi else \
        '{"rows":[{"id":1,"label":"positive"},{"id":2,"label":"negative"}]}'
    assert f"Answer: {example}" in system


def test_keyed_answers_parse_like_grouped_ones():
    grouped = build_config("m", None, **BASE).spec
    keyed = build_config("m", {"answer_format": "keyed"}, **BASE).spec
    g = {"groups": [{"label": "positive", "ids": [1, 3]}, {"label": "negative", "ids": ["2", 3]}]}
    k = {"rows": [{"id": 1, "label": "positive"}, {"id": "2", "label": "negative"}, {"id": 3, "label": "positive"},
                  {"id": 3, "label": "negative"}, {"id": 9, "label": "positive"}, {"id": True, "label": "neutral"}]}
    for spec, payload in ((grouped, g), (keyed, k)):
        outcomes, _ = prompts.parse_answer(spec, [{"type": "text", "text": json.dumps(payload)}], [1, 2, 3, 4])
        assert [(o.status, o.labels) for o in outcomes] == [
            ("succeeded", ("positive",)), ("succeeded", ("negative",)),
            ("invalid_output", ("positive", "negative")), ("missing", ())]
    outcomes, _ = prompts.parse_answer(keyed, [{"type": "text", "text": json.dumps(g)}], [1])
    assert outcomes[0].status == "invalid_output" and '{"rows": [...]}' in outcomes[0].error


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("model", ["claude-haiku-5-5", "claude-haiku-4-5"])
def test_max_tokens_bounds_the_longest_keyed_answer(multi, model):
    labels = {"a": "", "rather_long_label_name": "", "c": ""}
    spec = build_config("m", {"answer_format": "keyed", "multi_label": multi, "model": model},
                        **{**BASE, "labels": labels, "examples": None}).spec
    n = 100
    key = "labels" if multi else "label"
    worst = {"rows": [{"id": 1000 + i, key: list(labels) if multi else "rather_long_label_name"} for i in range(n)]}
    ratio = tokens.tokenizer_ratio(model)
    assert tokens.count_text(json.dumps(worst, separators=(",", ":")), ratio=ratio) <= prompts.max_tokens_for(spec, n)


def test_the_emulator_answers_in_the_format_the_schema_asks_for():
    keyed = build_config("m", {"answer_format": "keyed"}, **BASE).spec
    params = prompts.build_params(keyed, [(1, "I love it"), (2, "awful, broke"), (3, "a box")], cache=False)
    answer = json.loads(Responder().answer(params).text)
    assert answer == {"rows": [{"id": 1, "label": "positive"}, {"id": 2, "label": "negative"},
                               {"id": 3, "label": "neutral"}]}
    multi = build_config("m", {"answer_format": "keyed", "multi_label": True}, **BASE).spec
    params = prompts.build_params(multi, [(1, "I love it")], cache=False)
    assert json.loads(Responder().answer(params).text) == {"rows": [{"id": 1, "labels": ["positive"]}]}


def test_keyed_costs_more_output_tokens_a_row_than_grouped():
    """The figure docs/quality.md quotes: tokens a row of a 50-row answer, three labels."""
    labels = [("positive", "negative", "neutral")[i % 3] for i in range(50)]
    grouped = {"groups": [{"label": n, "ids": [i + 1 for i, x in enumerate(labels) if x == n]}
                          for n in ("positive", "negative", "neutral")]}
    keyed = {"rows": [{"id": i + 1, "label": x} for i, x in enumerate(labels)]}
    as_map = {"labels": {str(i + 1): x for i, x in enumerate(labels)}}
    per_row = {name: tokens.count_text(json.dumps(p, separators=(",", ":"))) / 50
               for name, p in (("grouped", grouped), ("keyed", keyed), ("map", as_map))}
    assert per_row["grouped"] < 3 < per_row["map"] < 6 < per_row["keyed"] < 12
