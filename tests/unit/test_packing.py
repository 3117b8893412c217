import re

from claude_batch import packing, prompts
from claude_batch.state import PendingItem

SPEC = prompts.PromptSpec(model="claude-sonnet-4-5", instructions="i",
                          labels=(prompts.Label("a"), prompts.Label("b")))


def items(n, alone=()):
    return [PendingItem(f"h{i:04d}", f"text {i}", 1, 1, i in alone) for i in range(n)]


def test_pack_size_and_alone():
    packs = packing.pack_items(items(60, alone={5}), pack_size=25, max_pack_tokens=10_000)
    assert [len(p) for p in packs] == [1, 25, 25, 9]
    assert packs[0][0][0].text_hash == "h0005"


def test_token_budget_splits_packs():
    long = [PendingItem(f"h{i}", "word " * 300, 1, 1, False) for i in range(4)]
    packs = packing.pack_items(long, pack_size=25, max_pack_tokens=700)
    assert all(sum(n for _, n in p) <= 700 for p in packs) and len(packs) >= 2


def test_custom_ids_legal_unique_deterministic():
    a_key, a = packing.plan_requests(SPEC, "v1", items(30), seq=0, pack_size=7, max_pack_tokens=10_000, cache=False)
    b_key, b = packing.plan_requests(SPEC, "v1", items(30), seq=0, pack_size=7, max_pack_tokens=10_000, cache=False)
    ids = [p.custom_id for p in a]
    assert ids == [p.custom_id for p in b] and a_key == b_key
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) and i.startswith(a_key) for i in ids)
    c_key, _ = packing.plan_requests(SPEC, "v1", items(30), seq=1, pack_size=7, max_pack_tokens=10_000, cache=False)
    assert c_key != a_key
    # every item is in exactly one request, with local ids 1..n
    seen = [it.text_hash for p in a for _, it, _ in p.items]
    assert sorted(seen) == sorted(i.text_hash for i in items(30))
    assert all([local for local, _, _ in p.items] == list(range(1, len(p.items) + 1)) for p in a)
