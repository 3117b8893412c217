import json
import re

import duckdb
import pyarrow as pa
import pytest

from claude_batch import bodies, packing, prompts
from claude_batch.warehouse import Warehouse

SPEC = prompts.PromptSpec(model="claude-sonnet-5-5", instructions="i",
                          labels=(prompts.Label("a"), prompts.Label("b")))


@pytest.fixture
def wh():
    con = duckdb.connect()
    yield Warehouse(con)
    con.close()


def load_pending(wh, texts, alone=(), attempts=None):
    """A pending table as gather builds it: rn dense, in no particular order (here: the texts')."""
    rows = [(i in alone, f"h{i:04d}", t, (attempts or {}).get(i, 1)) for i, t in enumerate(texts)]
    table = pa.table({
        "rn": list(range(1, len(rows) + 1)), "text_hash": [r[1] for r in rows], "text": [r[2] for r in rows],
        "n_rows": [1] * len(rows), "attempt": [r[3] for r in rows], "alone": [r[0] for r in rows],
        "chars": [len(r[2]) for r in rows],
    })
    wh.con.register("src", table)
    wh.execute("CREATE OR REPLACE TEMP TABLE pending AS SELECT * FROM src")
    wh.con.unregister("src")


def packs(wh):
    rows = wh.fetchall("SELECT k.req_no, k.item_id, p.text_hash, p.chars FROM cb_tmp_packed k "
                       "JOIN pending p USING (rn) ORDER BY k.req_no, k.item_id")
    out = {}
    for req, item, h, n in rows:
        out.setdefault(req, []).append((item, h, n))
    return [out[k] for k in sorted(out)]


def test_pack_size_and_alone(wh):
    load_pending(wh, [f"text {i}" for i in range(60)], alone={5})
    n = packing.pack(wh, "pending", pack_size=25, max_pack_chars=10_000)
    got = packs(wh)
    assert n == 4 and [len(p) for p in got] == [24, 25, 10, 1]  # item 5 left a hole in the first run
    assert got[3][0][1] == "h0005"  # the alone item, in a request of its own, after the packed ones
    assert all([i for i, _, _ in p] == list(range(1, len(p) + 1)) for p in got)
    assert sorted(h for p in got for _, h, _ in p) == [f"h{i:04d}" for i in range(60)]
    shapes = packing.shapes(wh)
    assert [s.n_items for s in shapes] == [24, 25, 10, 1] and [s.req_no for s in shapes] == [1, 2, 3, 4]


def test_pack_size_one_and_several_alone(wh):
    load_pending(wh, [f"t{i}" for i in range(7)], alone={1, 4})
    assert packing.pack(wh, "pending", pack_size=1, max_pack_chars=10_000) == 7
    assert [len(p) for p in packs(wh)] == [1] * 7
    assert packing.pack(wh, "pending", pack_size=3, max_pack_chars=10_000) == 5
    assert [len(p) for p in packs(wh)] == [2, 2, 1, 1, 1]  # runs {0,2} {3,5} {6}, then 1 and 4 alone
    assert [h for p in packs(wh)[3:] for _, h, _ in p] == ["h0001", "h0004"]


def test_everything_alone(wh):
    load_pending(wh, [f"t{i}" for i in range(5)], alone={0, 1, 2, 3, 4})
    assert packing.pack(wh, "pending", pack_size=10, max_pack_chars=10_000) == 5
    assert [s.req_no for s in packing.shapes(wh)] == [1, 2, 3, 4, 5]


def test_char_budget_splits_packs(wh):
    load_pending(wh, ["word " * 300] * 4 + ["short"] * 3)  # 1500 characters each, then 5
    n = packing.pack(wh, "pending", pack_size=25, max_pack_chars=3000)
    got = packs(wh)
    assert all(sum(c for _, _, c in p) <= 3000 for p in got)
    assert n == len(got) and sum(len(p) for p in got) == 7
    assert all([i for i, _, _ in p] == list(range(1, len(p) + 1)) for p in got)


def test_one_text_over_the_char_budget_goes_alone(wh):
    load_pending(wh, ["x" * 5000, "y", "z"])
    packing.pack(wh, "pending", pack_size=25, max_pack_chars=3000)
    assert sorted(len(p) for p in packs(wh)) == [1, 2]


def test_greedy_split():
    assert packing.greedy_split([10, 10, 10, 25, 1], 25) == [0, 0, 1, 2, 3]


def test_custom_ids_legal_unique_deterministic(wh):
    load_pending(wh, [f"text {i}" for i in range(30)])
    packing.pack(wh, "pending", pack_size=7, max_pack_chars=10_000)
    a = packing.submission_key_sql(wh, "v1", 0, 1, 5)
    assert a == packing.submission_key_sql(wh, "v1", 0, 1, 5)
    assert a != packing.submission_key_sql(wh, "v1", 1, 1, 5)
    assert a != packing.submission_key_sql(wh, "v1", 0, 1, 4)
    ids = [packing.custom_id(a, i) for i in range(5)]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) and i.startswith(a) for i in ids)
    assert all(len(i) == packing.CUSTOM_ID_LEN for i in ids)
    assert wh.scalar(f"SELECT {packing.custom_id_sql(wh, a, '3')}") == ids[3]


def test_warehouse_rendered_body_equals_sdk_params_and_size_is_exact(wh, tmp_path):
    texts = ['plain', 'quotes " and \\ backslash', "tags <b> & amp", "new\nline\ttab", "ünïcödé ✓ \u2028", "x" * 300]
    load_pending(wh, texts)
    packing.pack(wh, "pending", pack_size=4, max_pack_chars=10_000)
    enc = prompts.RequestEncoder(SPEC, cache=True)
    rows = bodies.render(wh, enc, tmp_path / "rows")
    planned = packing.fetch_planned(wh, 1, 2, SPEC, True)
    body = bodies.BatchBody(enc, rows, 1, 2, "abcdef012345")
    pieces = list(body._pieces())
    assert [len(p) for p in pieces] == rows.sizes
    assert b"".join(body) == b'{"requests":[' + b",".join(pieces) + b"]}" and body.size == len(b"".join(body))
    for index, (piece, p) in enumerate(zip(pieces, planned)):
        got = json.loads(piece)
        assert got["custom_id"] == packing.custom_id("abcdef012345", index)
        expected = p.params
        # The warehouse may order rows differently inside a message; every row is tagged with its id.
        assert sorted(prompts.parse_rows(got["params"]["messages"][0]["content"])) == sorted(
            prompts.parse_rows(expected["messages"][0]["content"]))
        got["params"]["messages"] = expected["messages"] = None
        assert got["params"] == expected
    sent = b"".join(body)
    assert len(sent) == body.size == bodies.EncodedBody.total_size(rows.sizes[:2])
    whole = json.loads(sent)
    assert len(whole["requests"]) == 2


@pytest.mark.parametrize("budget", [bodies.MEMORY_BUDGET, 300, 0])
@pytest.mark.parametrize("alone", [set(), {0, 7, 8, 20}])
def test_every_request_of_a_rendered_plan_carries_exactly_its_rows(wh, tmp_path, alone, budget):
    """Arithmetic packing streams the plan in request order; alone items (a ranked plan) make the
    renderer sort. Either way each request's message holds its own rows and nothing else, whether
    the rows stayed in memory, went to the scratch file, or a request straddles the two."""
    texts = [f"review {i} " + "é<&>\"" * (i % 3) for i in range(23)]
    load_pending(wh, texts, alone=alone)
    n = packing.pack(wh, "pending", pack_size=5, max_pack_chars=10_000)
    enc = prompts.RequestEncoder(SPEC, cache=False)
    rows = bodies.render(wh, enc, tmp_path / "rows", memory_budget=budget)
    assert (rows.spool.in_memory, (tmp_path / "rows").exists()) == (
        (rows.spool.size, False) if budget == bodies.MEMORY_BUDGET else (0, True) if budget == 0
        else (rows.spool.in_memory, True))
    assert budget != 300 or 0 < rows.spool.in_memory < rows.spool.size
    assert len(rows.sizes) == n
    body = bodies.BatchBody(enc, rows, 1, n, "abcdef012345")
    sent = b"".join(body)
    assert len(sent) == body.size
    requests = json.loads(sent)["requests"]
    planned = packing.fetch_planned(wh, 1, n, SPEC, False)
    assert len(requests) == len(planned) == n
    for got, p in zip(requests, planned):
        assert sorted(prompts.parse_rows(got["params"]["messages"][0]["content"])) == sorted(p.rows())
    # A later batch of the same plan starts at its own first request.
    tail = json.loads(b"".join(bodies.BatchBody(enc, rows, 3, n, "abcdef012345")))["requests"]
    assert [sorted(prompts.parse_rows(r["params"]["messages"][0]["content"])) for r in tail] == [
        sorted(p.rows()) for p in planned[2:]]
