"""Is the classifier's model usable today? Checked at the start of a run, before anything is sent.

- A model in our table (``catalog``): retired on today's date → the run fails naming the date and the
  suggested replacement; deprecated → a warning with its retirement date.
- A model our table lacks is not refused: the Models API (``GET /v1/models/{id}``, whose
  ``lifecycle`` is authoritative [REF §2]) is asked. Unknown there → the run fails naming the
  setting; known → the run goes on with a warning, priced from the ``prices`` setting, or with NULL
  costs (said in the log).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable

import anthropic

from . import catalog, config as config_mod
from .config import ClassifierConfig, ConfigError


def today() -> date:
    return datetime.now(timezone.utc).date()


def _retired_error(model: str, when: date, replacement: str | None) -> ConfigError:
    hint = f"; use {replacement!r} instead" if replacement else ""
    return ConfigError(f"setting 'model': {model!r} was retired on {when.isoformat()} and the API refuses it{hint}")


def check(cfg: ClassifierConfig, client: Callable[[], Any], warn: Callable[[str], None],
          day: date | None = None) -> None:
    """Raise ConfigError for a model that cannot be used; warn for one that soon cannot. ``client``
    is called only when the Models API must be asked (a model our table lacks)."""
    day = day or today()
    model = cfg.spec.model
    gone = catalog.retirement(model, day)
    if gone is not None:
        raise _retired_error(model, *gone)
    if catalog.is_known(model):
        info = catalog.model_info(model)
        if info.lifecycle_on(day) == "deprecated":
            when = info.retires_on.isoformat() if info.retires_on else "a date not yet announced"
            warn(f"model {model!r} is deprecated and retires on {when}"
                 + (f"; move to {info.replacement!r}" if info.replacement else ""))
        if cfg.prices:
            catalog.register(catalog.with_prices(info, cfg.prices))
            warn(f"model {model!r}: prices from the 'prices' setting replace our table's")
        return
    try:
        entry = client().models.retrieve(model)
    except anthropic.NotFoundError:
        raise ConfigError(f"setting 'model': {model!r} is not a model the API knows (Models API: 404); "
                          f"models we know: {', '.join(catalog.known_models())}") from None
    data = entry.model_dump(mode="json") if hasattr(entry, "model_dump") else dict(entry)
    if data.get("lifecycle") == "retired":
        retired = data.get("retires_at") or data.get("deprecated_at")
        raise _retired_error(model, date.fromisoformat(str(retired)[:10]) if retired else day, None)
    catalog.register(catalog.from_models_api(data, cfg.prices))
    note = (f"model {model!r} is not in our table (catalog data as of {catalog.AS_OF}); the Models API knows it "
            f"({data.get('lifecycle')}), so the run goes on with the capabilities it reports")
    note += ", priced from the 'prices' setting" if cfg.prices else (
        "; it has no prices: cost columns are NULL (set prices: {input: ..., output: ...})")
    warn(note)
    config_mod.check_model_settings(cfg)
