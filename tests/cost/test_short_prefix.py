"""The Haiku 4.5 caching trap, through real dbt builds: a ~2,000-token prefix is below its 4,096-token
minimum, so it would silently not be cached. The run must say so in the dbt log (how many tokens
short, what caching would save) and must not mark the prefix for caching."""

from __future__ import annotations

import re

from claude_batch import tokens
import workloads  # bench/workloads.py
from cost_helpers import reviews, results_usage

SHORT_RE = re.compile(
    r"shared prefix is (\d+) tokens, (\d+) short of the (\d+)-token caching minimum of claude-haiku-4-5: "
    r"it is not marked for caching.*?read from cache by (\d+) request\(s\): this run's prefix tokens would cost "
    r"\$(\d+\.\d+) instead of \$(\d+\.\d+), a saving of about \$(\d+\.\d+)"
)
SUMMARY_RE = re.compile(r"review_sentiment v\w+: collected (\d+) text\(s\) in (\d+) request\(s\), billed \$(\d+\.\d+), "
                        r"naive \$(\d+\.\d+), saved \$(\d+\.\d+)")


def test_short_prefix_on_haiku_is_reported_and_not_marked(project, emulator):
    # W1's instructions and its examples as prose: with the model's labels, examples and the answer
    # schema the prefix is about 2,000 tokens.
    instructions = workloads.W1_INSTRUCTIONS + "\n\nMore examples:\n" + "\n".join(
        f"- {e.text} -> {e.labels[0]}" for e in workloads.W1_EXAMPLES)
    assert 1_500 <= tokens.count_text(instructions) <= 1_900
    marked = []

    def watch(text, labels, params):  # sees every request's params as the emulator received them
        marked.append(any("cache_control" in block for block in params.get("system") or [] if isinstance(block, dict))
                      or "cache_control" in params)
        return None

    emulator.set_responder(watch)
    project.add_reviews(reviews(60))
    settings = {"cb_model": "claude-haiku-4-5", "cb_instructions": instructions, "cb_pack_size": 5}  # 12 requests
    project.dbt("run", vars=settings)

    log = (project.logs / "dbt.log").read_text(encoding="utf-8")
    found = SHORT_RE.search(log)
    assert found, "the dbt log does not report the short prefix"
    prefix, short, minimum, readers = (int(found.group(i)) for i in range(1, 5))
    padded, now, saving = (float(found.group(i)) for i in range(5, 8))
    assert minimum == 4096 and prefix + short == 4096
    assert 1_800 <= prefix <= 2_400  # "about 2,000 tokens"
    assert readers == 11
    # What caching would save, at Haiku's batch input price ($0.50/MTok): 12 requests paying the whole
    # prefix now, against the prefix padded to 4,096 tokens, written once (1 h: 2x) and read 11 times (0.1x).
    assert now == round(12 * prefix * 0.5 / 1e6, 4)
    assert padded == round(4096 * (2 + 11 * 0.1) * 0.5 / 1e6, 4)
    assert saving > 0 and abs(saving - (now - padded)) <= 1e-4

    project.dbt("run", vars=settings)  # collect
    assert marked and not any(marked), "a request carried cache_control on a prefix that cannot be cached"
    requests = project.dicts("SELECT * FROM claude_batch.cb_requests")
    assert len(requests) == 12 and {r["cached_prefix"] for r in requests} == {False}
    assert {r["prefix_tokens"] for r in requests} == {prefix}
    assert sum(r["cache_write_5m_tokens"] + r["cache_write_1h_tokens"] + r["cache_read_tokens"] for r in requests) == 0
    usage = [u["usage"] for u in results_usage(emulator)]
    assert len(usage) == 12
    assert all(u["cache_creation_input_tokens"] == 0 and u["cache_read_input_tokens"] == 0 for u in usage)
    assert all(u["input_tokens"] > prefix for u in usage)  # the whole prefix billed as plain input

    # The one-line summary of the collecting run, in the dbt log.
    log = (project.logs / "dbt.log").read_text(encoding="utf-8")
    summary = SUMMARY_RE.findall(log)[-1]
    assert int(summary[0]) == 60 and int(summary[1]) == 12
    billed = sum(r["billed_usd"] for r in requests)
    assert float(summary[2]) == round(billed, 4)
    assert float(summary[3]) > float(summary[2])
