"""A classifier's settings: parsed, checked and hashed into a version before anything is sent.

Settings come from two places and are merged, the model file winning: keyword arguments of
``classify(...)`` in the dbt Python model, and the ``claude`` config dict (``dbt_project.yml``,
``schema.yml`` or ``{{ config(claude={...}) }}``), which is where YAML-only settings such as the
model name, limits and ``reclassify: "{{ var('claude_reclassify', false) }}"`` belong.

Every bad setting raises :class:`ConfigError` naming the setting, at the start of the run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping, Sequence

from . import catalog, prompts

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_TEMPLATE_FIELD_RE = re.compile(r"\{([^{}]+)\}")
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1000 * 1000  # the API's 256 MB, counted conservatively in decimal


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


Mode = Literal["batch", "realtime", "auto"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything one classifier run needs, already validated."""

    name: str
    key_columns: tuple[str, ...]
    text_column: str | None
    text_template: str | None
    spec: prompts.PromptSpec
    mode: Mode = "batch"
    realtime_threshold: int = 200
    pack_size: int = 50  # rows a request; bench/cost.py sweep: 25 -> 1.57x the floor, 50 -> 1.33x (docs/cost.md)
    max_pack_chars: int = 24_000
    max_attempts: int = 3
    max_text_chars: int = 20_000
    on_too_long: Literal["truncate", "skip"] = "truncate"
    cache: Literal["auto", "always", "never"] = "auto"
    reclassify: bool = False
    dry_run: bool = False
    max_usd_per_run: float | None = None
    max_usd_per_day: float | None = None
    state_schema: str = "claude_batch"
    reconcile_grace_seconds: float = 120.0
    max_requests_per_batch: int = MAX_BATCH_REQUESTS
    max_batch_bytes: int = MAX_BATCH_BYTES
    queue_cap: int | None = None
    batch_rpm: int = 50
    parallel_creates: int = 2
    wait_seconds: float = 0.0
    poll_seconds: float = 5.0
    realtime_rpm: int = 50
    realtime_itpm: int = 40_000
    realtime_otpm: int = 8_000
    realtime_concurrency: int = 8
    max_rows_per_run: int | None = None
    count_tokens_api: bool = False
    extra: dict = field(default_factory=dict)

    @functools.cached_property
    def version(self) -> str:
        return classifier_version(self.spec)

    @property
    def text_columns(self) -> tuple[str, ...]:
        if self.text_column:
            return (self.text_column,)
        return tuple(dict.fromkeys(_TEMPLATE_FIELD_RE.findall(self.text_template or "")))


def classifier_version(spec: prompts.PromptSpec) -> str:
    """Hash of everything that decides the answer: model, whole prompt, schema, parameters.

    The system text already holds instructions, label descriptions and examples, and the schema
    holds the label set; hashing the rendered bytes rather than the settings means that any change
    the model could see is a new version, and nothing else is.
    """
    probe = prompts.build_params(spec, [(1, "")], cache=False)
    probe.pop("max_tokens", None)  # scales with the pack, not part of the question
    probe.pop("messages", None)
    payload = {
        "format": "claude_batch/v1",
        "multi_label": spec.multi_label,
        "params": probe,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return digest[:16]


# ---------------------------------------------------------------------------- parsing helpers

_OPTION_NAMES = {f.name for f in fields(ClassifierConfig)} - {
    "name",
    "key_columns",
    "text_column",
    "text_template",
    "spec",
    "extra",
}
_SPEC_NAMES = {"model", "instructions", "labels", "examples", "multi_label", "output_mode", "temperature", "cache_ttl", "max_tokens"}
_INPUT_NAMES = {"key", "text", "text_template"}


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no", ""}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise ConfigError(f"setting {name!r} must be true or false, got {value!r}")


def _as_number(name: str, value: Any, *, minimum: float, integer: bool, allow_none: bool = False):
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
        if allow_none:
            return None
        raise ConfigError(f"setting {name!r} is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} must be a number, got {value!r}") from None
    if integer and number != int(number):
        raise ConfigError(f"setting {name!r} must be a whole number, got {value!r}")
    if number < minimum:
        raise ConfigError(f"setting {name!r} must be at least {minimum:g}, got {value!r}")
    return int(number) if integer else number


def _labels(value: Any) -> tuple[prompts.Label, ...]:
    if value is None or (hasattr(value, "__len__") and len(value) == 0):
        raise ConfigError("setting 'labels' is required: give at least two labels")
    items: list[prompts.Label] = []
    if isinstance(value, Mapping):
        for name, description in value.items():
            items.append(prompts.Label(str(name), "" if description is None else str(description)))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for entry in value:
            if isinstance(entry, str):
                items.append(prompts.Label(entry))
            elif isinstance(entry, Mapping) and "name" in entry:
                items.append(prompts.Label(str(entry["name"]), str(entry.get("description") or "")))
            else:
                raise ConfigError(f"setting 'labels': cannot read label {entry!r}; use a name or {{name, description}}")
    else:
        raise ConfigError(f"setting 'labels' must be a list or a mapping of name to description, got {value!r}")
    names = [label.name for label in items]
    for name in names:
        if not name.strip():
            raise ConfigError("setting 'labels': a label name is empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"setting 'labels': duplicate label(s) {dupes}")
    if len(items) < 2:
        raise ConfigError("setting 'labels': give at least two labels")
    return tuple(items)


def _examples(value: Any, labels: tuple[prompts.Label, ...]) -> tuple[prompts.Example, ...]:
    if not value:
        return ()
    allowed = {label.name for label in labels}
    out = []
    for i, entry in enumerate(value):
        if isinstance(entry, Mapping):
            text = entry.get("text")
            got = entry.get("labels", entry.get("label"))
        elif isinstance(entry, Sequence) and len(entry) == 2:
            text, got = entry
        else:
            raise ConfigError(f"setting 'examples'[{i}]: use {{text, label}} or (text, label), got {entry!r}")
        names = (got,) if isinstance(got, str) else tuple(got or ())
        if not isinstance(text, str) or not names:
            raise ConfigError(f"setting 'examples'[{i}]: needs a text and a label")
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise ConfigError(f"setting 'examples'[{i}]: label(s) {unknown} not among the labels")
        out.append(prompts.Example(text, names))
    return tuple(out)


def _key_columns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        cols: tuple[str, ...] = (value,)
    elif isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        cols = tuple(value)
    else:
        raise ConfigError(f"setting 'key' must be a column name or a list of them, got {value!r}")
    if len(set(cols)) != len(cols):
        raise ConfigError(f"setting 'key' repeats a column: {list(cols)}")
    return cols


def build_config(name: str, options: Mapping[str, Any] | None = None, **kwargs: Any) -> ClassifierConfig:
    """Merge YAML ``options`` with keyword arguments (which win) and validate everything."""
    merged: dict[str, Any] = dict(options or {})
    merged.update({k: v for k, v in kwargs.items() if v is not None})
    unknown = sorted(set(merged) - _OPTION_NAMES - _SPEC_NAMES - _INPUT_NAMES - {"extra"})
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}")

    if "key" not in merged:
        raise ConfigError("setting 'key' is required: the column(s) that identify a source row")
    key_columns = _key_columns(merged["key"])
    text_column = merged.get("text")
    text_template = merged.get("text_template")
    if bool(text_column) == bool(text_template):
        raise ConfigError("give exactly one of the settings 'text' (a column) or 'text_template'")
    if text_template is not None and not _TEMPLATE_FIELD_RE.search(str(text_template)):
        raise ConfigError("setting 'text_template' names no column: use {column} placeholders")

    model = str(merged.get("model") or "claude-haiku-4-5")
    try:
        catalog.model_info(model)
    except catalog.UnknownModelError as exc:
        raise ConfigError(f"setting 'model': {exc}") from None
    instructions = merged.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        raise ConfigError("setting 'instructions' is required: say what to classify and how")
    labels = _labels(merged.get("labels"))
    examples = _examples(merged.get("examples"), labels)
    output_mode = merged.get("output_mode")
    if output_mode not in (None, "json_schema", "tool"):
        raise ConfigError(f"setting 'output_mode' must be json_schema or tool, got {output_mode!r}")
    if output_mode == "json_schema" and not catalog.model_info(model).json_schema_output:
        raise ConfigError(f"setting 'output_mode': model {model!r} has no JSON-schema output; use tool")
    cache_ttl = merged.get("cache_ttl", "1h")
    if cache_ttl not in ("5m", "1h"):
        raise ConfigError(f"setting 'cache_ttl' must be '5m' or '1h', got {cache_ttl!r}")
    temperature = merged.get("temperature", 0.0)
    if temperature is not None:
        temperature = _as_number("temperature", temperature, minimum=0, integer=False)
        if temperature > 1:
            raise ConfigError(f"setting 'temperature' must be between 0 and 1, got {temperature!r}")
    extra_params: dict[str, Any] = dict(merged.get("extra") or {})
    if "max_tokens" in merged and merged["max_tokens"] is not None:
        extra_params["max_tokens"] = _as_number("max_tokens", merged["max_tokens"], minimum=1, integer=True)

    spec = prompts.PromptSpec(
        model=model,
        instructions=instructions,
        labels=labels,
        examples=examples,
        multi_label=_as_bool("multi_label", merged.get("multi_label", False)),
        output_mode=output_mode,
        temperature=temperature,
        cache_ttl=cache_ttl,
        extra=tuple(sorted(extra_params.items())),
    )

    opts: dict[str, Any] = {}
    defaults = ClassifierConfig.__dataclass_fields__
    for opt in _OPTION_NAMES:
        if opt not in merged:
            continue
        value = merged[opt]
        default = defaults[opt].default
        if opt in {"reclassify", "dry_run", "count_tokens_api"}:
            opts[opt] = _as_bool(opt, value)
        elif opt == "mode":
            if value not in ("batch", "realtime", "auto"):
                raise ConfigError(f"setting 'mode' must be batch, realtime or auto, got {value!r}")
            opts[opt] = value
        elif opt == "on_too_long":
            if value not in ("truncate", "skip"):
                raise ConfigError(f"setting 'on_too_long' must be truncate or skip, got {value!r}")
            opts[opt] = value
        elif opt == "cache":
            if value not in ("auto", "always", "never"):
                raise ConfigError(f"setting 'cache' must be auto, always or never, got {value!r}")
            opts[opt] = value
        elif opt == "state_schema":
            if not isinstance(value, str) or not _IDENTIFIER_RE.match(value):
                raise ConfigError(f"setting 'state_schema' must be a plain identifier, got {value!r}")
            opts[opt] = value
        elif opt in {"max_usd_per_run", "max_usd_per_day", "queue_cap", "max_rows_per_run"}:
            integer = opt in {"queue_cap", "max_rows_per_run"}
            opts[opt] = _as_number(opt, value, minimum=0, integer=integer, allow_none=True)
        elif isinstance(default, float):
            opts[opt] = _as_number(opt, value, minimum=0, integer=False)
        else:
            opts[opt] = _as_number(opt, value, minimum=1, integer=True)
    if opts.get("max_requests_per_batch", 1) > MAX_BATCH_REQUESTS:
        raise ConfigError(f"setting 'max_requests_per_batch' cannot exceed the API's {MAX_BATCH_REQUESTS}")
    if opts.get("max_batch_bytes", 1) > MAX_BATCH_BYTES:
        raise ConfigError(f"setting 'max_batch_bytes' cannot exceed the API's {MAX_BATCH_BYTES}")

    return ClassifierConfig(
        name=name,
        key_columns=key_columns,
        text_column=text_column,
        text_template=text_template,
        spec=spec,
        **opts,
    )


def describe(config: ClassifierConfig) -> dict:
    """JSON-able summary of the settings, stored with each version (no secrets live in config)."""
    data = asdict(config)
    data["version"] = config.version
    return data
