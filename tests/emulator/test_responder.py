"""The lexical heuristic and the request shapes the responder understands (no HTTP)."""

from __future__ import annotations

import json

import pytest

from claude_batch import prompts
from claude_batch.emulator import worker as worker_module
from claude_batch.emulator.responder import Responder, parse_system, words_match
from conftest import SPEC, TOOL_SPEC, params_for, requests_for, results_by_id, wait_ended


def labels_for(texts, spec=SPEC, responder=None):
    answer = (responder or Responder()).answer(params_for(texts, spec))
    content = [{"type": "tool_use", "input": answer.tool_input}] if answer.is_tool else [{"type": "text", "text": answer.text}]
    outcomes, _ = prompts.parse_answer(spec, content, list(range(1, len(texts) + 1)))
    return [o.labels for o in outcomes]


@pytest.mark.parametrize(
    "text, label",
    [
        ("I love it", "positive"),
        ("Loved it, excellent!", "positive"),
        ("Terribly slow and it broke", "negative"),
        ("Worst purchase, I hate it", "negative"),
        ("The box is blue", "neutral"),  # no match: the neutral-like label
        ("", "neutral"),
    ],
)
def test_sentiment_heuristic(text, label):
    assert labels_for([text]) == [(label,)]


def test_ties_without_a_neutral_label_go_to_the_first_label():
    spec = prompts.PromptSpec(model=SPEC.model, instructions="x", labels=(prompts.Label("spam"), prompts.Label("ham")))
    assert labels_for(["nothing relevant here"], spec) == [("spam",)]


def test_few_shot_examples_teach_words():
    spec = prompts.PromptSpec(
        model=SPEC.model, instructions="Route tickets.",
        labels=(prompts.Label("sales"), prompts.Label("support")),
        examples=(prompts.Example("How much is the enterprise plan", ("sales",)),
                  prompts.Example("My password reset email never arrives", ("support",))),
    )
    assert labels_for(["pricing of the enterprise plan?", "password reset broken"], spec) == [("sales",), ("support",)]


def test_multi_label_keeps_labels_scoring_half_the_best():
    assert labels_for(["refund the invoice, parcel arrived late"], TOOL_SPEC) == [("billing", "shipping")]
    assert labels_for(["refund refund invoice charge, arrived"], TOOL_SPEC) == [("billing",)]


def test_word_matching_is_light_stemming():
    assert words_match("love", "loved") and words_match("broke", "broken")
    assert words_match("terrible", "terribly")
    assert not words_match("bad", "badge") and not words_match("art", "arts")
    assert not words_match("cat", "catalogue")


def test_parse_system_reads_our_prompt_format():
    system = prompts.system_text(TOOL_SPEC)
    names, descriptions, examples, multi = parse_system(system)
    assert names == ["billing", "shipping", "quality"]
    assert descriptions["shipping"].startswith("delivery")
    assert multi is True and examples == {}


def test_output_schema_instance_for_plain_json_schema():
    responder = Responder()
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}, "score": {"type": "integer"}},
    }
    answer = responder.answer({
        "model": "claude-sonnet-4-6", "max_tokens": 50,
        "messages": [{"role": "user", "content": "awful, the worst"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    })
    assert json.loads(answer.text) == {"label": "negative", "score": 0}


def test_helper_processes_give_the_same_results(emulator_factory, monkeypatch):
    """The parallel path (helper processes) and the in-process path agree line for line."""
    monkeypatch.setattr(worker_module, "PARALLEL_MIN_REQUESTS", 1)
    monkeypatch.setattr(worker_module, "CHUNK_LINES", 7)
    texts = [f"review {i}: {'great' if i % 3 else 'broken'}" for i in range(40)]
    outputs = []
    for processes in (0, 2):
        emu = emulator_factory(worker_processes=processes, state_dir=None)
        emu.script({"review 4: great": {"omit": True}})
        with emu.client(max_retries=0) as client:
            requests = requests_for(texts)
            requests[5]["params"]["model"] = "claude-unknown"  # an errored line as well
            batch = client.messages.batches.create(requests=requests)
            wait_ended(client, batch.id)
            outputs.append({k: (r.type, r.message.content if r.type == "succeeded" else None)
                            for k, r in results_by_id(client, batch.id).items()})
        assert emu.stats()["batches_computed_in_helper_processes"] == (1 if processes else 0)
        emu.stop()
    assert outputs[0] == outputs[1]
    assert outputs[0]["r5"][0] == "errored"
