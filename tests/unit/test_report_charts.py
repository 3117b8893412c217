"""The report's pieces that need no warehouse: axis ticks, time buckets, dollar figures, escaping."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from claude_batch import _svg, report


@pytest.mark.parametrize("lo,hi", [(0, 1), (0, 0.0123), (0.6, 1.0), (0, 7), (0, 1234.5), (0, 0), (3e-7, 4e-6)])
def test_ticks_cover_the_range_in_round_steps(lo, hi):
    ticks = _svg.nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 12
    steps = {round(b - a, 15) for a, b in zip(ticks, ticks[1:])}
    (step,) = {round(s / 10 ** math.floor(math.log10(s)), 6) for s in steps}  # one step, 1, 2 or 5 x 10^k
    assert step in (1, 2, 5)


def test_time_buckets_follow_the_span():
    t0 = dt.datetime(2026, 12, 1)
    assert report._bucket_unit(t0, t0 + dt.timedelta(minutes=30)) == "minute"
    assert report._bucket_unit(t0, t0 + dt.timedelta(hours=5)) == "hour"
    assert report._bucket_unit(t0, t0 + dt.timedelta(days=10)) == "day"
    assert report._bucket_unit(None, None) == "day"


def test_dollars_keep_a_fraction_of_a_cent():
    assert report.usd(0.000542) == "$0.000542"
    assert report.usd(1.5) == "$1.5000"
    assert report.usd(12345.678) == "$12,345.68"
    assert report.usd(None) == "–"


def test_names_are_escaped_in_the_svg():
    svg = _svg.scatter([{"x": 1.0, "y": 0.9, "name": "<b>&", "series": "s\"1"}], x_title="x", y_title="y",
                       x_fmt=str, y_fmt=str, label="l")
    assert "<b>&" not in svg and "&lt;b&gt;&amp;" in svg and 'data-series="s&quot;1"' in svg
    bars = _svg.bars(["g<1>"], ["a", "b"], [[1.0, 0.0]], y_title="n", y_fmt=str, label="l")
    assert bars.count('class="bar"') == 1 and "g&lt;1&gt;" in bars  # a zero stack draws nothing
