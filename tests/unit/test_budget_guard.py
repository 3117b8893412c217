"""The budget guard prices every planned request at once; each figure must be what pricing that
request alone gives, and it admits exactly the requests a one-by-one running total would."""

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from claude_batch import config as config_mod
from claude_batch import budget, cost, estimate, packing, pipeline, prompts, tokens
from claude_batch.warehouse import Warehouse


def _planned(wh, n_texts: int, pack_size: int, **settings) -> tuple[pipeline.Pipeline, packing.RequestShapes]:
    cfg = config_mod.build_config("guard", {"pack_size": pack_size, "model": "claude-sonnet-5-5", **settings},
                                  key="id", text="body", instructions="Say how each review feels.",
                                  labels={"positive": "", "negative": ""})
    pipe = pipeline.Pipeline(cfg, wh, "src")
    pipe.store.ensure()
    texts = [f"review {i} " + "words " * (i % 17) for i in range(n_texts)]
    wh.con.register("p", pa.table({
        "rn": list(range(1, n_texts + 1)), "text_hash": [f"h{i}" for i in range(n_texts)], "text": texts,
        "n_rows": [1] * n_texts, "attempt": [1] * n_texts, "alone": [False] * n_texts,
        "chars": [len(t) for t in texts]}))
    wh.execute("CREATE TEMP TABLE pending AS SELECT * FROM p")
    packing.pack(wh, "pending", pack_size=pack_size, max_pack_chars=cfg.max_pack_chars)
    return pipe, packing.shapes(wh)


def _one_by_one(guard: budget.Guard, shape: packing.RequestShape, first: bool) -> float:
    cal = estimate.local(guard.prefix, tokens.tokenizer_ratio(guard.pipe.cfg.spec.model))
    rows_in = cal.rows_tokens(shape.chars, shape.n_items)
    out = prompts.max_tokens_for(guard.pipe.cfg.spec, shape.n_items)
    tier = "batch" if guard.batch else "standard"
    if guard.cached:
        usage = cost.Usage(input_tokens=rows_in, output_tokens=out, cache_write_1h_tokens=guard.prefix if first else 0,
                           cache_read_tokens=0 if first else guard.prefix, service_tier=tier)
    else:
        usage = cost.Usage(input_tokens=rows_in + guard.prefix, output_tokens=out, service_tier=tier)
    return cost.billed_usd(guard.pipe.cfg.spec.model, usage)


@pytest.fixture
def wh():
    con = duckdb.connect()
    yield Warehouse(con)
    con.close()


@pytest.mark.parametrize("cached,batch", [(True, True), (False, True), (False, False)])
def test_each_estimate_equals_pricing_that_request_alone(wh, cached, batch):
    pipe, shapes = _planned(wh, 103, pack_size=10)  # ten packs of 10 and one of 3
    guard = budget.Guard(pipe, 1500, cached, batch=batch)
    got = guard.estimates(shapes)
    assert len(got) == len(shapes) == 11
    assert list(got) == [_one_by_one(guard, s, first=i == 0) for i, s in enumerate(shapes)]


def test_admits_the_requests_a_running_total_allows(wh):
    pipe, shapes = _planned(wh, 103, pack_size=10)
    prices = budget.Guard(pipe, 1500, True, batch=True).estimates(shapes)
    limit = float(sum(prices[:4]) + prices[4] / 2)  # room for four requests and half of the fifth
    pipe.cfg = config_mod.build_config("guard", {"pack_size": 10, "model": "claude-sonnet-5-5", "max_usd_per_run": limit},
                                       key="id", text="body", instructions="Say how each review feels.",
                                       labels={"positive": "", "negative": ""})
    guard = budget.Guard(pipe, 1500, True, batch=True)
    assert guard.admit(shapes) == 4
    assert guard.reason.startswith("budget") and guard.refused == 7
    assert guard.admitted_texts == 40 and guard.refused_texts == 63
    assert guard.spent == float(np.cumsum(prices)[3]) <= limit


@pytest.mark.parametrize("cap,admitted", [(3, 3), (0, 0)])
def test_queue_cap_stops_first_when_it_binds_first(wh, cap, admitted):
    pipe, shapes = _planned(wh, 50, pack_size=10, queue_cap=cap, max_usd_per_run=100.0)
    guard = budget.Guard(pipe, 1500, True, batch=True)
    assert guard.admit(shapes) == admitted and guard.reason == f"processing-queue cap {cap}"
    assert guard.refused_texts == 50 - 10 * admitted and (guard.spent > 0) == (admitted > 0)


def test_a_preflight_request_is_priced_at_real_time_prices(wh):
    """The preflight sends the first request as a real-time call: the guard prices it at standard
    rates (twice the batch rate), the rest at batch rates."""
    pipe, shapes = _planned(wh, 103, pack_size=10)
    batch_only = budget.Guard(pipe, 1500, True, batch=True).estimates(shapes)
    with_preflight = budget.Guard(pipe, 1500, True, batch=True, preflight=True).estimates(shapes)
    standard = budget.Guard(pipe, 1500, True, batch=False).estimates(shapes)
    assert with_preflight[0] == standard[0] == pytest.approx(2 * batch_only[0])
    assert list(with_preflight[1:]) == list(batch_only[1:])
