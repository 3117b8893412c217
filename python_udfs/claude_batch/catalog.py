"""Models we know: prices, caching minimums, context windows and structured-output support.

One table, checked by hand against the public pricing and prompt-caching pages. Prices are USD per
million tokens at standard (real-time) rates; batch rates are half, and cache multipliers apply on
top of whichever rate is in force (write 1.25x for 5 min, 2x for 1 h, read 0.1x).
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_CHECKED_ON = "2026-11-25"
# The SDK (2.13) warns that claude-sonnet-4-5 reaches end of life on 2026-11-30; it stays listed so
# existing classifiers keep their version, but new ones should move to claude-sonnet-4-6.

BATCH_DISCOUNT = 0.5
CACHE_WRITE_5M = 1.25
CACHE_WRITE_1H = 2.0
CACHE_READ = 0.1


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    min_cacheable_tokens: int
    context_window: int
    max_output_tokens: int
    json_schema_output: bool  # output_config.format json_schema support


_FAMILIES: dict[str, tuple[float, float, int, int, int, bool]] = {
    # name: (input, output, min cacheable, context, max output, json_schema output)
    "claude-sonnet-4-6": (3.0, 15.0, 1024, 200_000, 64_000, True),
    "claude-sonnet-4-5": (3.0, 15.0, 1024, 200_000, 64_000, True),
    "claude-sonnet-4-0": (3.0, 15.0, 1024, 200_000, 64_000, False),
    "claude-haiku-4-5": (1.0, 5.0, 4096, 200_000, 64_000, True),
    "claude-3-5-haiku-latest": (0.8, 4.0, 2048, 200_000, 8_192, False),
    "claude-opus-4-6": (5.0, 25.0, 4096, 200_000, 64_000, True),
    "claude-opus-4-5": (5.0, 25.0, 4096, 200_000, 64_000, True),
    "claude-opus-4-1": (15.0, 75.0, 1024, 200_000, 32_000, False),
    "claude-opus-4-0": (15.0, 75.0, 1024, 200_000, 32_000, False),
}

# Dated snapshot ids and aliases the API also accepts.
_ALIASES = {
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-3-5-haiku-20241022": "claude-3-5-haiku-latest",
    "claude-opus-4-5-20251101": "claude-opus-4-5",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-20250514": "claude-opus-4-0",
}

MODELS: dict[str, ModelInfo] = {
    name: ModelInfo(name, *values) for name, values in _FAMILIES.items()
}


class UnknownModelError(ValueError):
    pass


def known_models() -> list[str]:
    return sorted([*MODELS, *_ALIASES])


def model_info(name: str) -> ModelInfo:
    """Facts for a model id or alias; raises UnknownModelError naming the model."""
    canonical = _ALIASES.get(name, name)
    try:
        return MODELS[canonical]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(known_models())}"
        ) from None


def is_known(name: str) -> bool:
    return _ALIASES.get(name, name) in MODELS
