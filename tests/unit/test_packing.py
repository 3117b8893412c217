import json
import re

from claude_batch import packing, prompts
from claude_batch.state import PendingItem

SPEC = prompts.PromptSpec(model="claude-sonnet-4-5", instructions="i",
                          labels=(prompts.Label("a"), prompts.Label("b")))


def items(n, alone=()):
    return [PendingItem(f"h{i:04d}", f"text {i}", 1, 1, i in alone) for i in range(n)]


def test_pack_size_and_alone():
    packs = list(packing.iter_packs(items(60, alone={5}), pack_size=25, max_pack_chars=10_000))
    assert [len(p) for p in packs] == [1, 25, 25, 9]
    assert packs[0][0][0].text_hash == "h0005"


def test_char_budget_splits_packs():
    long = [PendingItem(f"h{i}", "word " * 300, 1, 1, False) for i in range(4)]
    packs = list(packing.iter_packs(long, pack_size=25, max_pack_chars=3000))
    assert all(sum(n for _, n in p) <= 3000 for p in packs) and len(packs) == 2


def plan(seq, n=30, pack_size=7):
    reqs = [packing.planned(p, SPEC, False) for p in packing.iter_packs(items(n), pack_size=pack_size, max_pack_chars=10_000)]
    return packing.assign_ids("v1", reqs, seq), reqs


def test_custom_ids_legal_unique_deterministic():
    a_key, a = plan(0)
    b_key, b = plan(0)
    ids = [p.custom_id for p in a]
    assert ids == [p.custom_id for p in b] and a_key == b_key
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) and i.startswith(a_key) for i in ids)
    assert all(len(i) == packing.CUSTOM_ID_LEN for i in ids)
    c_key, _ = plan(1)
    assert c_key != a_key
    seen = [it.text_hash for p in a for _, it, _ in p.items]
    assert sorted(seen) == sorted(i.text_hash for i in items(30))
    assert all([local for local, _, _ in p.items] == list(range(1, len(p.items) + 1)) for p in a)


def test_encoder_bytes_equal_sdk_params_and_size_is_exact():
    _, reqs = plan(0, n=3)
    enc = prompts.RequestEncoder(SPEC, cache=True)
    for p in reqs:
        p.cache = True
        size, rows_json = enc.size(packing.CUSTOM_ID_LEN, p.rows())
        body = enc.encode_with_rows(p.custom_id, len(p.items), rows_json)
        assert len(body) == size
        assert json.loads(body) == {"custom_id": p.custom_id, "params": p.params}
