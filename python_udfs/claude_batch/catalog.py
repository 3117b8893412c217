"""Models and API versions we know, read from one data file: ``_data/models.json``.

Every fact there (ids, lifecycle and retirement dates, limits, price bands, caching minimums,
tokenizer generation, thinking and effort rules, forced tool use, JSON-schema output, what each API
version rejects) carries its source and the date it was checked. The product (pricing, validation,
request building) and the emulator both read it through this module: updating it for next month's
model is a change to that one file (``tests/unit/test_model_facts.py`` checks it is well-formed).

Prices are USD per million tokens at standard (real-time) rates. A model may have several price
bands by prompt length (Haiku 5.5 costs more above 100K prompt tokens, for the whole request); batch
rates are ``BATCH_DISCOUNT`` of whichever band applies, on every token kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .errors import ClaudeBatchError

EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
THINKING_TYPES = ("adaptive", "enabled", "disabled", "between_tools")
LIFECYCLES = ("active", "legacy", "deprecated", "retired")


@lru_cache(maxsize=1)
def _data() -> dict:
    # Next to this file (package data): also found where the package is loaded without a module spec
    # (the emulator's helper processes).
    return json.loads((Path(__file__).parent / "_data" / "models.json").read_text(encoding="utf-8"))


def data() -> dict:
    """The raw data file (tests and the emulator's Models API read it)."""
    return _data()


@dataclass(frozen=True)
class PriceBand:
    up_to_prompt_tokens: int | None  # None: no upper bound
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class ModelInfo:
    name: str  # the canonical id
    aliases: tuple[str, ...]
    display_name: str
    line: str | None
    released: date | None
    lifecycle: str  # as of the data's as_of date; see lifecycle_on
    deprecated_on: date | None
    retires_on: date | None
    replacement: str | None
    context_window: int
    max_output_tokens: int
    prices: tuple[PriceBand, ...]
    min_cacheable_tokens: int
    tokenizer: str
    tokenizer_ratio: float
    thinking_default: str  # off | adaptive | always
    thinking_types: Mapping[str, bool]
    off_max_effort: str | None  # thinking can be turned off only at this effort or lower
    effort_supported: bool
    effort_default: str | None
    forced_tool_use: bool
    json_schema_output: bool
    assistant_prefill: bool  # a last assistant message (prefill) is accepted
    sources: Mapping[str, str]

    # The first band: what a classifier's requests (far below any band edge) pay.
    @property
    def input_usd_per_mtok(self) -> float:
        return self.prices[0].input

    @property
    def output_usd_per_mtok(self) -> float:
        return self.prices[0].output

    @property
    def thinks_by_default(self) -> bool:
        return self.thinking_default != "off"

    def band(self, prompt_tokens: int) -> PriceBand:
        for band in self.prices:
            if band.up_to_prompt_tokens is None or prompt_tokens <= band.up_to_prompt_tokens:
                return band
        return self.prices[-1]

    def lifecycle_on(self, day: date) -> str:
        """active | legacy | deprecated | retired on ``day``: the retirement date decides, so a
        clock moved past it (tests, or simply next month) sees the model retired."""
        if self.retires_on is not None and day >= self.retires_on:
            return "retired"
        if self.retires_on is not None or (self.deprecated_on is not None and day >= self.deprecated_on):
            return "deprecated"
        return self.lifecycle


@dataclass(frozen=True)
class Retired:
    """A model that is gone, known only by its ids, retirement date and replacement."""

    name: str
    aliases: tuple[str, ...]
    retires_on: date
    replacement: str | None


class UnknownModelError(ClaudeBatchError, ValueError):
    pass


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def model_from_entry(entry: Mapping[str, Any]) -> ModelInfo:
    """A ModelInfo from one entry of ``models.json``'s ``models`` list (the same shape elsewhere too:
    the emulator's extra models)."""
    ratios = {name: float(t["ratio"]) for name, t in _data()["tokenizers"].items()}
    thinking = entry["thinking"]
    return ModelInfo(
        name=entry["id"], aliases=tuple(entry["aliases"]), display_name=entry["display_name"], line=entry.get("line"),
        released=_day(entry.get("released")), lifecycle=entry["lifecycle"], deprecated_on=_day(entry.get("deprecated_on")),
        retires_on=_day(entry.get("retires_on")), replacement=entry.get("replacement"),
        context_window=int(entry["context_window"]), max_output_tokens=int(entry["max_output_tokens"]),
        prices=tuple(PriceBand(**band) for band in entry["prices"]),
        min_cacheable_tokens=int(entry["min_cacheable_tokens"]), tokenizer=entry["tokenizer"],
        tokenizer_ratio=ratios[entry["tokenizer"]], thinking_default=thinking["default"],
        thinking_types=dict(thinking["types"]), off_max_effort=thinking.get("off_max_effort"),
        effort_supported=bool(entry["effort"]["supported"]), effort_default=entry["effort"].get("default"),
        forced_tool_use=bool(entry["forced_tool_use"]), json_schema_output=bool(entry["json_schema_output"]),
        assistant_prefill=bool(entry["assistant_prefill"]), sources=dict(entry["sources"]),
    )


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, ModelInfo], dict[str, str], dict[str, Retired]]:
    raw = _data()
    models: dict[str, ModelInfo] = {}
    aliases: dict[str, str] = {}
    for entry in raw["models"]:
        info = model_from_entry(entry)
        models[info.name] = info
        for alias in info.aliases:
            aliases[alias] = info.name
    retired = {}
    for r in raw["retired"]:
        gone = Retired(r["id"], tuple(r["aliases"]), date.fromisoformat(r["retires_on"]), r.get("replacement"))
        for name in (gone.name, *gone.aliases):
            retired[name] = gone
    return models, aliases, retired


MODELS: Mapping[str, ModelInfo] = _tables()[0]
BATCH_DISCOUNT: float = float(_data()["batch_discount"]["value"])
AS_OF: date = date.fromisoformat(_data()["as_of"])
DEFAULT_API_VERSION: str = _data()["api_versions"]["default"]
DEFAULT_MODEL = "claude-haiku-5-5"  # today's model for classification (REF §2; cost-model.md W1)


def canonical(name: str) -> str:
    return _tables()[1].get(name, name)


def known_models() -> list[str]:
    models, aliases, _ = _tables()
    return sorted([*models, *aliases])


def is_known(name: str) -> bool:
    return canonical(name) in _tables()[0]


def model_info(name: str) -> ModelInfo:
    """Facts for a model id or alias; raises UnknownModelError naming the model."""
    try:
        return _tables()[0][canonical(name)]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(known_models())}"
        ) from None


def retired_model(name: str) -> Retired | None:
    """The retirement record of a model that has no other facts left (None if not such a model)."""
    return _tables()[2].get(name)


def retirement(name: str, day: date) -> tuple[date, str | None] | None:
    """(retirement date, replacement) when ``name`` is retired on ``day``, else None."""
    if is_known(name):
        info = model_info(name)
        if info.lifecycle_on(day) == "retired":
            return info.retires_on or day, info.replacement
        return None
    gone = retired_model(name)
    if gone is not None and day >= gone.retires_on:
        return gone.retires_on, gone.replacement
    return None


def api_versions() -> Mapping[str, Mapping[str, Any]]:
    return _data()["api_versions"]["versions"]


def api_version_rules(version: str) -> Mapping[str, Any]:
    """What an ``anthropic-version`` rejects; ClaudeBatchError for a version we do not know."""
    try:
        return api_versions()[version]
    except KeyError:
        raise ClaudeBatchError(
            f"unknown anthropic-version {version!r}; known: {', '.join(sorted(api_versions()))}"
        ) from None


def register(info: ModelInfo) -> None:
    """Facts for this process about a model our table lacks (from the Models API), or our facts
    with the user's ``prices``: what every later ``model_info`` call returns for its id."""
    models, aliases, _ = _tables()
    models[info.name] = info
    for alias in info.aliases:
        aliases[alias] = info.name


def with_prices(info: ModelInfo, prices: Mapping[str, float]) -> ModelInfo:
    """``info`` priced by the user's ``prices`` setting (one band)."""
    from dataclasses import replace

    return replace(info, prices=(PriceBand(up_to_prompt_tokens=None, **prices),))


# What we assume of a model our table lacks where the Models API says nothing: the caching minimum
# (a prefix below the real one is only left uncached, never an error) and the newer tokenizer (the
# local estimate errs high, so the budget guard stays on the safe side).
UNLISTED_MIN_CACHEABLE_TOKENS = 1024
UNLISTED_TOKENIZER = "claude-4.7"


def from_models_api(entry: Mapping[str, Any], prices: Mapping[str, float] | None) -> ModelInfo:
    """A ModelInfo from ``GET /v1/models/{id}`` (the SDK's ModelInfo as a dict): the API's own
    capabilities decide thinking, effort and structured output; prices come from the user or are none."""
    caps = entry.get("capabilities") or {}
    thinking = caps.get("thinking") or {}
    types = {k: bool((thinking.get("types") or {}).get(k, {}).get("supported")) for k in THINKING_TYPES}
    thinks = bool(thinking.get("supported"))
    effort = caps.get("effort") or {}

    def _date(value: Any) -> date | None:
        return None if not value else date.fromisoformat(str(value)[:10])

    ratio = float(_data()["tokenizers"][UNLISTED_TOKENIZER]["ratio"])
    info = ModelInfo(
        name=str(entry["id"]), aliases=(), display_name=str(entry.get("display_name") or entry["id"]),
        line=entry.get("line"), released=_date(entry.get("created_at")),
        lifecycle="active" if entry.get("lifecycle") == "active" else str(entry.get("lifecycle") or "active"),
        deprecated_on=_date(entry.get("deprecated_at")), retires_on=_date(entry.get("retires_at")), replacement=None,
        context_window=int(entry.get("max_input_tokens") or 200_000),
        max_output_tokens=int(entry.get("max_tokens") or 64_000),
        prices=(), min_cacheable_tokens=UNLISTED_MIN_CACHEABLE_TOKENS, tokenizer=UNLISTED_TOKENIZER,
        tokenizer_ratio=ratio,
        # A model that can think is taken to think unless told not to (as every 5.x model does);
        # thinking_plan then sends whatever the API says turns it off, or effort low and headroom.
        thinking_default="adaptive" if thinks else "off", thinking_types=types, off_max_effort=None,
        effort_supported=bool(effort.get("supported")), effort_default=None,
        forced_tool_use=False,  # unknown: never forced; JSON-schema output instead
        json_schema_output=bool((caps.get("structured_outputs") or {}).get("supported", True)),
        assistant_prefill=False,  # unknown: we never prefill anyway
        sources={"all": "GET /v1/models/{id} at run time"},
    )
    return with_prices(info, prices) if prices else info
