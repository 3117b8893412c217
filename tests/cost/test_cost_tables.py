"""The cost tables add up, cent for cent, to the usage the emulator reported.

W1's prompt on Sonnet (prefix cached: cache writes and reads in the usage), duplicates, packs, and a
first batch where some requests error (not billed) and are sent again.
"""

from __future__ import annotations

from collections import Counter

from claude_batch import catalog
from cost_helpers import classifier, results_usage, reviews

FIELDS = ("input_tokens", "output_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens")


def _usage_fields(usage: dict) -> dict:
    """The emulator's usage block in our column names (read here, not through claude_batch.cost)."""
    detail = usage.get("cache_creation") or {}
    return {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "cache_write_5m_tokens": detail.get("ephemeral_5m_input_tokens", 0),
        "cache_write_1h_tokens": detail.get("ephemeral_1h_input_tokens", 0),
        "cache_read_tokens": usage["cache_read_input_tokens"],
        "batch": usage.get("service_tier") == "batch",
    }


def _price(model: str, u: dict) -> float:
    """USD of one response from the price table, written out here (independent of cost.billed_usd):
    the model's own prices for each token kind (its first band: these prompts are far below 100K)."""
    band = catalog.model_info(model).prices[0]
    half = 0.5 if u["batch"] else 1.0
    return (u["input_tokens"] * band.input + u["cache_write_5m_tokens"] * band.cache_write_5m
            + u["cache_write_1h_tokens"] * band.cache_write_1h + u["cache_read_tokens"] * band.cache_read
            + u["output_tokens"] * band.output) * half / 1e6


def test_cost_tables_add_up_to_the_emulator_usage(runs, emulator):
    rows = reviews(150, distinct=110)  # 40 duplicate rows
    runs.add(rows)
    cfg = classifier(pack_size=10)  # 11 requests; W1 prefix on Sonnet: cached
    emulator.set_faults({"errored_fraction": 0.5, "seed": 4})
    runs.run(cfg)
    emulator.set_faults({})
    runs.settle(cfg)
    out = runs.run(cfg)
    assert {r["status"] for r in out.values()} == {"succeeded"}

    t = "claude_batch"
    statuses = Counter(s for (s,) in runs.sql(f"SELECT status FROM {t}.cb_requests"))
    assert statuses["errored"] > 0 and statuses["succeeded"] >= 11  # failures happened and were retried

    # 1. cb_requests usage == the usage in the emulator's results files, token for token.
    reported = results_usage(emulator)
    assert len(reported) == statuses["succeeded"]
    emu = {f: sum(_usage_fields(r["usage"])[f] for r in reported) for f in FIELDS}
    ours = dict(zip(FIELDS, runs.sql(f"SELECT {', '.join(f'sum({f})' for f in FIELDS)} FROM {t}.cb_requests")[0]))
    assert ours == emu
    assert emu["cache_write_1h_tokens"] > 0 and emu["cache_read_tokens"] > 0  # caching is in the sums
    per_request = {cid: (n_in, n_out) for cid, n_in, n_out in
                   runs.sql(f"SELECT custom_id, input_tokens, output_tokens FROM {t}.cb_requests WHERE status = 'succeeded'")}
    assert per_request == {r["custom_id"]: (r["usage"]["input_tokens"], r["usage"]["output_tokens"]) for r in reported}
    # Errored requests carry no usage and cost nothing.
    assert runs.sql(f"SELECT sum(billed_usd), sum({' + '.join(FIELDS)}) FROM {t}.cb_requests "
                    "WHERE status = 'errored'")[0] == (0.0, 0)

    # 2. billed_usd recomputed from the emulator's tokens and the price table == the SQL sum.
    billed_sql = runs.sql(f"SELECT sum(billed_usd) FROM {t}.cb_requests")[0][0]
    billed_emu = sum(_price(r["model"], _usage_fields(r["usage"])) for r in reported)
    assert abs(billed_sql - billed_emu) <= 1e-9
    by_request = dict(runs.sql(f"SELECT custom_id, billed_usd FROM {t}.cb_requests WHERE status = 'succeeded'"))
    for r in reported:
        assert abs(by_request[r["custom_id"]] - _price(r["model"], _usage_fields(r["usage"]))) <= 1e-12

    # 3. cb_cost_by_batch sums == cb_requests sums.
    by_batch = runs.sql(f"SELECT sum(input_tokens), sum(output_tokens), sum(cache_write_tokens), sum(cache_read_tokens), "
                        f"sum(billed_usd), sum(naive_usd), sum(requests) FROM {t}.cb_cost_by_batch")[0]
    by_req = runs.sql(f"SELECT sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens + cache_write_1h_tokens), "
                      f"sum(cache_read_tokens), sum(billed_usd), sum(naive_usd), count(*) FROM {t}.cb_requests")[0]
    assert by_batch[:4] == by_req[:4] and by_batch[6] == by_req[6]
    assert abs(by_batch[4] - by_req[4]) <= 1e-9 and abs(by_batch[5] - by_req[5]) <= 1e-9

    # 4. Per-row cost_usd in the output table sums to the classifier's billed total; cb_cost_by_text
    #    and cb_cost_by_run (what each run collected) sum to it too.
    total = runs.sql(f"SELECT sum(billed_usd) FROM {t}.cb_requests WHERE classifier = ?", [cfg.name])[0][0]
    assert abs(sum(r["cost_usd"] for r in out.values()) - total) <= 1e-9
    assert abs(runs.sql(f"SELECT sum(billed_usd) FROM {t}.cb_cost_by_text")[0][0] - total) <= 1e-9
    assert abs(runs.sql(f"SELECT sum(billed_usd) FROM {t}.cb_cost_by_run")[0][0] - total) <= 1e-9
    # Duplicates share their text's cost; every row carries some.
    assert all(r["cost_usd"] > 0 for r in out.values())
    # The naive figure is far above what was billed (the saving the summary line reports).
    naive = runs.sql(f"SELECT sum(naive_usd) FROM {t}.cb_requests")[0][0]
    assert naive > 10 * total
