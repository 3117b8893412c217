"""The SQL answer parser (batch results, DuckDB) and the Python one (real-time path) agree."""

import json
import random

import duckdb
import pytest

from claude_batch import collect, prompts
from claude_batch.state import StateStore
from claude_batch.warehouse import Warehouse

LABELS = (prompts.Label("pos"), prompts.Label("neg"), prompts.Label("it's odd, \"quoted\""))


def answers(rng: random.Random, n_items: int):
    """A spread of answers: good, missing rows, unknown labels, duplicates, junk ids, junk shapes."""
    names = [label.name for label in LABELS] + ["bogus", None, 7]
    for _ in range(120):
        kind = rng.random()
        if kind < 0.08:
            yield {"not": "groups"}
            continue
        groups = []
        for _ in range(rng.randint(0, 4)):
            ids = [rng.choice([rng.randint(0, n_items + 1), str(rng.randint(1, n_items)), 2.0, True, "x", None,
                                 -1, "01", " 2", "+3", [1], {"id": 1}, 1e300, 2**70])
                   for _ in range(rng.randint(0, n_items))]
            group = {"label": rng.choice(names), "ids": ids}
            if rng.random() < 0.05:
                group = ["junk"]
            if rng.random() < 0.05:
                group = {"label": "pos", "ids": "1"}
            groups.append(group)
        yield {"groups": groups}


def keyed_answers(rng: random.Random, n_items: int):
    """The keyed format's spread: entries per row (some twice, some missing), junk ids and labels,
    entries that are not objects, `labels` that are not lists, answers of the other format."""
    names = [label.name for label in LABELS] + ["bogus", None, 7, ["pos"]]
    junk_ids = [0, n_items + 1, str(rng.randint(1, n_items)), 2.0, True, "x", None, -1, "01", " 2", "+3", [1],
                {"id": 1}, 1e300, 2**70]
    for _ in range(160):
        kind = rng.random()
        if kind < 0.05:
            yield {"groups": [{"label": "pos", "ids": [1]}]}
            continue
        if kind < 0.08:
            yield {"rows": {"1": "pos"}}
            continue
        rows = []
        for _ in range(rng.randint(0, n_items + 2)):
            item = rng.randint(1, n_items) if rng.random() < 0.8 else rng.choice(junk_ids)
            entry = {"id": item}
            roll = rng.random()
            if roll < 0.04:
                entry = rng.choice(["junk", 3, ["pos"], None])
            elif roll < 0.08:
                entry = {"label": "pos"}  # no id
            else:
                entry["label"] = rng.choice(names)
                if rng.random() < 0.5:  # multi-label entries (and stray ones on single-label answers)
                    entry["labels"] = rng.choice([[rng.choice(names) for _ in range(rng.randint(0, 3))], "pos", None])
                if rng.random() < 0.3:
                    entry.pop("label")
            rows.append(entry)
        yield {"rows": rows}


# Past collect.BIT_LABELS labels the SQL judge takes its general aggregates instead of a bit mask.
MANY_LABELS = LABELS + tuple(prompts.Label(f"extra {i}") for i in range(collect.BIT_LABELS))


@pytest.mark.parametrize("answer_format", prompts.ANSWER_FORMATS)
@pytest.mark.parametrize("labels", [LABELS, MANY_LABELS], ids=["bits", "many"])
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("mode", ["tool", "text"])
def test_sql_and_python_parsers_agree(tmp_path, multi, mode, labels, answer_format):
    spec = prompts.PromptSpec(model="claude-sonnet-5-5", instructions="i", labels=labels, multi_label=multi,
                              answer_format=answer_format)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    store = StateStore(Warehouse(con))
    store.ensure()
    rng = random.Random(7 if multi else 3)
    n_items = 4
    lines, expected = [], {}
    corpus = keyed_answers(rng, n_items) if answer_format == "keyed" else answers(rng, n_items)
    for k, payload in enumerate(corpus):
        cid = f"sub-{k:06d}"
        con.execute(f"INSERT INTO {store.t['cb_requests']} (custom_id, submission_key, item_count, status) "
                    "VALUES (?, 'sub', ?, 'in_flight')", [cid, n_items])
        for item in range(1, n_items + 1):
            con.execute(f"INSERT INTO {store.t['cb_request_items']} (custom_id, item_id, row_chars) VALUES (?, ?, 1)",
                        [cid, item])
        block = ({"type": "tool_use", "id": "t", "name": "classify", "input": payload} if mode == "tool"
                 else {"type": "text", "text": json.dumps(payload)})
        message = {"content": [block], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 1, "output_tokens": 1}}
        lines.append(json.dumps({"custom_id": cid, "result": {"type": "succeeded", "message": message}}))
        outcomes, _ = prompts.parse_answer(spec, [block], range(1, n_items + 1))
        for o in outcomes:
            expected[(cid, o.item_id)] = (o.status, list(o.labels) if o.status == "succeeded" else None)
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    outcomes = collect.stage_results_file(store, path, spec, "claude-sonnet-5-5", "sub")
    got = {(cid, item): (status, labels if status == "succeeded" else None)
           for cid, item, status, labels in con.execute(
               f"SELECT r.custom_id, a.item_id, a.status, a.labels FROM ({outcomes}) a JOIN cb_tmp_req r USING (ln)"
           ).fetchall()}
    assert set(got) <= set(expected)
    # A row the answer does not name is not staged: apply_staging makes it 'missing'.
    got = {key: got.get(key, ("missing", None)) for key in expected}
    assert got == expected
    statuses = {v[0] for v in expected.values()}
    assert {"succeeded", "missing", "invalid_output"} <= statuses  # the corpus exercises every rule


def test_a_line_this_submission_never_sent_is_ignored_and_named_in_the_log(tmp_path, caplog):
    spec = prompts.PromptSpec(model="claude-sonnet-5-5", instructions="i", labels=LABELS)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    store = StateStore(Warehouse(con))
    store.ensure()
    con.execute(f"INSERT INTO {store.t['cb_requests']} (custom_id, submission_key, item_count, status) "
                "VALUES ('sub-000000', 'sub', 1, 'in_flight')")
    message = {"content": [{"type": "text", "text": json.dumps({"groups": [{"label": "pos", "ids": [1]}]})}],
               "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}
    lines = [{"custom_id": cid, "result": {"type": "succeeded", "message": message}}
             for cid in ("sub-000000", "other-000000")]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with caplog.at_level("WARNING"):
        outcomes = collect.stage_results_file(store, path, spec, "claude-sonnet-5-5", "sub")
    assert "1 result line(s) had custom_ids this submission never sent" in caplog.text
    assert con.execute("SELECT custom_id FROM cb_tmp_req").fetchall() == [("sub-000000",)]
    assert con.execute(f"SELECT item_id, status, labels FROM ({outcomes})").fetchall() == [(1, "succeeded", ["pos"])]
