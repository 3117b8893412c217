"""What a response cost, what it would have cost without our savings, and whether caching pays.

All figures come from a response's ``usage`` block and the price table in ``catalog``
(``_data/models.json``: per-model prices by prompt-length band, with the model's own cache prices):
- billed: what the API charges (batch discount for ``service_tier == "batch"``, cache prices);
  thinking is output and is billed in ``output_tokens``, which the API reports inclusive of it;
- naive: the same rows as one real-time, uncached request each, i.e. every input token at the
  standard input price (cache reads and writes counted as plain input) and output at output price.
  The per-row naive figure in the state tables (collect.py) adds the prefix to every row, as a real
  one-call-per-row run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from . import catalog, tokens

MTOK = 1_000_000


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0  # billed output, thinking included (the API's inclusive total)
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    service_tier: str = "standard"
    thinking_tokens: int = 0  # the part of output_tokens spent thinking (output_tokens_details)

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens + self.cache_read_tokens

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None, *, default_tier: str = "standard") -> "Usage":
        """From a response's usage dict; when the 5m/1h split is absent, writes count as 5 min."""
        if not usage:
            return cls(service_tier=default_tier)
        detail = usage.get("cache_creation") or {}
        creation = int(usage.get("cache_creation_input_tokens") or 0)
        w5 = int(detail.get("ephemeral_5m_input_tokens") or 0)
        w1 = int(detail.get("ephemeral_1h_input_tokens") or 0)
        if not detail:
            w5 = creation
        return cls(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_write_5m_tokens=w5,
            cache_write_1h_tokens=w1,
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
            service_tier=str(usage.get("service_tier") or default_tier),
            thinking_tokens=int((usage.get("output_tokens_details") or {}).get("thinking_tokens") or 0),
        )


def has_prices(model: str) -> bool:
    """False for a model the Models API knows but our table does not, with no ``prices`` setting:
    its costs are NULL (said in the log), never a guess."""
    return bool(catalog.model_info(model).prices)


def billed_usd(model: str, usage: Usage) -> float | None:
    return _billed(model, usage.service_tier, usage.input_tokens, usage.cache_write_5m_tokens,
                   usage.cache_write_1h_tokens, usage.cache_read_tokens, usage.output_tokens)


def billed_usd_many(model: str, service_tier: str, *, input_tokens: Any, output_tokens: Any,
                    cache_write_5m_tokens: Any = 0, cache_write_1h_tokens: Any = 0, cache_read_tokens: Any = 0) -> Any:
    """``billed_usd`` of many requests at once: token counts as numpy arrays (or numbers), the same
    arithmetic element by element, so each figure equals what ``billed_usd`` gives for it."""
    import numpy as np

    info = catalog.model_info(model)
    if not info.prices:
        return None
    args = (service_tier, input_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, output_tokens)
    result = _band_cost(info.prices[-1], *args)
    if len(info.prices) > 1:
        prompt = np.asarray(input_tokens + cache_write_5m_tokens + cache_write_1h_tokens + cache_read_tokens)
        for band in reversed(info.prices[:-1]):  # ascending bands: the lowest that fits wins
            result = np.where(prompt <= band.up_to_prompt_tokens, _band_cost(band, *args), result)
    return result


def _band_cost(band: catalog.PriceBand, service_tier: str, input_tokens: Any, write_5m: Any, write_1h: Any,
               read: Any, output_tokens: Any) -> Any:
    rate = catalog.BATCH_DISCOUNT if service_tier == "batch" else 1.0
    return (
        input_tokens * band.input + write_5m * band.cache_write_5m + write_1h * band.cache_write_1h
        + read * band.cache_read + output_tokens * band.output
    ) * rate / MTOK


def _billed(model: str, service_tier: str, input_tokens: int, write_5m: int, write_1h: int, read: int,
            output_tokens: int) -> float | None:
    info = catalog.model_info(model)
    if not info.prices:
        return None
    # The band is chosen by the whole prompt (input, cache writes and reads) and prices the whole
    # request, output included [H55].
    band = info.band(input_tokens + write_5m + write_1h + read)
    return _band_cost(band, service_tier, input_tokens, write_5m, write_1h, read, output_tokens)


def billed_usd_sql(model: str, cols: Mapping[str, str]) -> str:
    """``billed_usd`` as a SQL expression over usage columns (same prices, bands and multipliers), so
    a million result lines are priced by the warehouse. ``cols`` maps Usage field names to SQL.
    NULL for a model with no prices."""
    info = catalog.model_info(model)
    if not info.prices:
        return "CAST(NULL AS DOUBLE)"
    rate = f"(CASE WHEN {cols['service_tier']} = 'batch' THEN {catalog.BATCH_DISCOUNT} ELSE 1.0 END)"

    def one(band: catalog.PriceBand) -> str:
        return (f"({cols['input_tokens']} * {band.input} + {cols['cache_write_5m_tokens']} * {band.cache_write_5m}"
                f" + {cols['cache_write_1h_tokens']} * {band.cache_write_1h}"
                f" + {cols['cache_read_tokens']} * {band.cache_read} + {cols['output_tokens']} * {band.output})")

    if len(info.prices) == 1:
        body = one(info.prices[0])
    else:
        prompt = (f"({cols['input_tokens']} + {cols['cache_write_5m_tokens']} + {cols['cache_write_1h_tokens']}"
                  f" + {cols['cache_read_tokens']})")
        whens = " ".join(f"WHEN {prompt} <= {b.up_to_prompt_tokens} THEN {one(b)}"
                         for b in info.prices if b.up_to_prompt_tokens is not None)
        body = f"(CASE {whens} ELSE {one(info.prices[-1])} END)"
    return f"({body} * {rate} / {MTOK})"


def naive_usd(model: str, usage: Usage) -> float | None:
    """Same tokens at standard price with no cache: the cost without batch and cache savings."""
    info = catalog.model_info(model)
    if not info.prices:
        return None
    band = info.band(usage.total_input_tokens)
    return (usage.total_input_tokens * band.input + usage.output_tokens * band.output) / MTOK


@dataclass(frozen=True)
class CachePlan:
    """Whether to mark the shared prefix for caching, and why."""

    prefix_tokens: int
    min_tokens: int
    mark: bool
    message: str | None  # set when the prefix is too short to cache: what a longer one would save


def cache_plan(model: str, prefix_tokens: int, *, expected_requests: int, batch: bool, policy: str = "auto",
               ttl: str = "1h") -> CachePlan:
    """Decide the breakpoint: a prefix below the model's minimum is silently not cached by the API,
    so marking it buys nothing; we say how far short it is and what caching would save.

    The saving compares this run's prefix tokens as they are (every request pays the whole prefix
    as input) with the prefix padded to the minimum and cached (written once at the ``ttl`` write
    price, read at 10 % by every other request), at batch or standard prices. On a small run
    padding does not pay; the message then says from how many requests it would.
    """
    info = catalog.model_info(model)
    minimum = info.min_cacheable_tokens
    if policy == "never":
        return CachePlan(prefix_tokens, minimum, False, None)
    if prefix_tokens >= minimum or policy == "always":
        return CachePlan(prefix_tokens, minimum, True, None)
    if not info.prices:
        return CachePlan(prefix_tokens, minimum, False, message_no_prices(model))
    band = info.prices[0]
    price = band.input * (catalog.BATCH_DISCOUNT if batch else 1.0) / MTOK  # one input token
    # This model's own cache prices, as multiples of its input price (they differ by model [REF §4]).
    write = (band.cache_write_1h if ttl == "1h" else band.cache_write_5m) / band.input
    read = band.cache_read / band.input
    requests = max(expected_requests, 1)
    readers = requests - 1
    now_usd = requests * prefix_tokens * price
    padded_usd = minimum * (write + readers * read) * price
    message = (
        f"shared prefix is {prefix_tokens} tokens, {minimum - prefix_tokens} short of the "
        f"{minimum}-token caching minimum of {info.name}: it is not marked for caching "
        f"(the API would silently not cache it)."
    )
    if padded_usd < now_usd:
        message += (
            f" Padded to {minimum} tokens (e.g. with more few-shot examples) it would be written once and read "
            f"from cache by {readers} request(s): this run's prefix tokens would cost ${padded_usd:.4f} instead of "
            f"${now_usd:.4f}, a saving of about ${now_usd - padded_usd:.4f}."
        )
    else:
        per_request = prefix_tokens - read * minimum
        breakeven = int(minimum * (write - read) / per_request) + 1 if per_request > 0 else None
        message += (
            f" Padding it to {minimum} tokens and caching it would not pay on {requests} request(s) "
            f"(${padded_usd:.4f} against ${now_usd:.4f} now)"
            + (f"; it would from about {breakeven} requests a run." if breakeven else ".")
        )
    return CachePlan(prefix_tokens, minimum, False, message)


def message_no_prices(model: str) -> str:
    return (f"model {model!r} has no prices in our table and no 'prices' setting: its cost columns are NULL; "
            "set prices: {input: ..., output: ...} (USD per million tokens) to see them")


def prefix_tokens(params: Mapping[str, Any]) -> int:
    """Tokens of the cacheable prefix of our requests: tools, output format and system, in the
    model's tokenizer (Claude 4.7+ counts about 30 % more [H55])."""
    ratio = tokens.tokenizer_ratio(params.get("model"))
    return (
        tokens.count_tools(params.get("tools"), ratio=ratio)
        + tokens.count_output_format(dict(params), ratio=ratio)
        + tokens.count_system(params.get("system"), ratio=ratio)
    )
