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
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping, Sequence

from . import catalog, prompts
from .errors import ConfigError

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_TEMPLATE_FIELD_RE = re.compile(r"\{([^{}]+)\}")
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1000 * 1000  # the API's 256 MB, counted conservatively in decimal


Mode = Literal["batch", "realtime", "auto"]

# The output's columns (output.py) after the key(s) and the pass-through columns (a pass-through column may not take a name here).
OUTPUT_COLUMNS = ("label", "labels", "status", "error_type", "error_message", "raw_answer", "classifier",
                  "classifier_version", "model", "custom_id", "batch_id", "attempt", "text_hash", "truncated",
                  "cost_usd", "naive_usd", "classified_at")


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
    pack_size: int | Literal["auto"] = 50  # rows a request; bench/cost.py sweep: 25 -> 1.57x the floor, 50 -> 1.33x (docs/cost.md)
    # pack_size: auto (calibrate.py, docs/quality.md): the largest of calibration_pack_sizes whose agreement
    # with one row per request on a seeded sample of calibration_sample texts is at least min_agreement.
    min_agreement: float = 0.98
    calibration_sample: int = 200
    calibration_pack_sizes: tuple[int, ...] = (10, 25, 50, 100)
    calibration_max_usd: float | None = None
    # Uncertain rows (pipeline, output): an `unsure` label the model may give, and a stronger model that
    # classifies those rows again.
    unsure: bool = False
    escalate_to: str | None = None
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
    preflight: Literal["auto", "always", "never"] = "auto"
    api_version: str | None = None  # None: the SDK's own (2026-10-21 for SDK 2.x)
    prices: Mapping[str, float] | None = None  # USD per MTok, for a model our table lacks (or to override it)
    columns: tuple[str, ...] = ()  # source columns copied into the output next to the key (not sent)
    extra: dict = field(default_factory=dict)

    @functools.cached_property
    def version(self) -> str:
        return classifier_version(self.spec)

    @property
    def text_columns(self) -> tuple[str, ...]:
        if self.text_column:
            return (self.text_column,)
        return tuple(dict.fromkeys(_TEMPLATE_FIELD_RE.findall(self.text_template or "")))

    @property
    def auto_pack_size(self) -> bool:
        return self.pack_size == "auto"


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
_SAMPLING_NAMES = ("temperature", "top_p", "top_k")
_SPEC_NAMES = {"model", "instructions", "labels", "examples", "multi_label", "output_mode", "cache_ttl", "max_tokens",
               "answer_format", *_SAMPLING_NAMES}
PRICE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_INPUT_NAMES = {"key", "text", "text_template"}
UNSURE_LABEL = "unsure"
UNSURE_DESCRIPTION = ("only when the text gives you no good reason to choose any other label; "
                      "never as a shortcut for a label that fits")


def as_bool(name: str, value: Any) -> bool:
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

    model = str(merged.get("model") or catalog.DEFAULT_MODEL)
    # A model missing from our table is not refused here: the run checks it against the Models API
    # before anything is sent (models.resolve), and registers what the API says about it.
    instructions = merged.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        raise ConfigError("setting 'instructions' is required: say what to classify and how")
    labels = _labels(merged.get("labels"))
    unsure = as_bool("unsure", merged.get("unsure", False))
    if unsure:
        # Part of the prompt (so of the version): the model may say it cannot tell.
        if UNSURE_LABEL in {label.name for label in labels}:
            raise ConfigError(f"setting 'unsure': a label named {UNSURE_LABEL!r} already exists; "
                              "remove it from 'labels' (unsure: true adds it)")
        labels = (*labels, prompts.Label(UNSURE_LABEL, UNSURE_DESCRIPTION))
    examples = _examples(merged.get("examples"), labels)
    output_mode = merged.get("output_mode")
    if output_mode not in (None, "json_schema", "tool"):
        raise ConfigError(f"setting 'output_mode' must be json_schema or tool, got {output_mode!r}")
    # The answer's shape is part of the prompt (schema and system text), so of the classifier version.
    answer_format = merged.get("answer_format") or "grouped"
    if answer_format not in prompts.ANSWER_FORMATS:
        raise ConfigError(f"setting 'answer_format' must be grouped or keyed, got {answer_format!r}")
    cache_ttl = merged.get("cache_ttl", "1h")
    if cache_ttl not in ("5m", "1h"):
        raise ConfigError(f"setting 'cache_ttl' must be '5m' or '1h', got {cache_ttl!r}")
    api_version = merged.get("api_version")
    if isinstance(api_version, str) and api_version.strip().lower() in {"", "none", "null"}:
        api_version = None  # an unset dbt var
    if api_version is not None:
        api_version = str(api_version)
        if api_version not in catalog.api_versions():
            raise ConfigError(f"setting 'api_version': unknown anthropic-version {api_version!r}; "
                              f"known: {', '.join(sorted(catalog.api_versions()))}")
    sampling = _sampling(merged, model, api_version)
    prices = _prices(_json_setting("prices", merged.get("prices")))
    columns = _columns(merged.get("columns"), key_columns)
    extra_params: dict[str, Any] = dict(_json_setting("extra", merged.get("extra")) or {})
    if "max_tokens" in merged and merged["max_tokens"] is not None:
        extra_params["max_tokens"] = _as_number("max_tokens", merged["max_tokens"], minimum=1, integer=True)

    spec = prompts.PromptSpec(
        model=model,
        instructions=instructions,
        labels=labels,
        examples=examples,
        multi_label=as_bool("multi_label", merged.get("multi_label", False)),
        output_mode=output_mode,
        cache_ttl=cache_ttl,
        sampling=sampling,
        extra=tuple(sorted(extra_params.items())),
        answer_format=answer_format,
    )

    opts: dict[str, Any] = {}
    defaults = ClassifierConfig.__dataclass_fields__
    for opt in _OPTION_NAMES:
        if opt not in merged:
            continue
        value = merged[opt]
        default = defaults[opt].default
        if opt in {"api_version", "prices", "columns", "unsure"}:
            continue  # parsed above
        if opt == "pack_size" and isinstance(value, str) and value.strip().lower() == "auto":
            opts[opt] = "auto"
        elif opt == "min_agreement":
            number = _as_number(opt, value, minimum=0, integer=False)
            if number > 1:
                raise ConfigError(f"setting 'min_agreement' is a share between 0 and 1, got {value!r}")
            opts[opt] = number
        elif opt == "calibration_pack_sizes":
            opts[opt] = _pack_sizes(value)
        elif opt == "calibration_max_usd":
            opts[opt] = _as_number(opt, value, minimum=0, integer=False, allow_none=True)
        elif opt == "escalate_to":
            if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
                continue
            if not isinstance(value, str):
                raise ConfigError(f"setting 'escalate_to' must be a model id, got {value!r}")
            opts[opt] = value.strip()
        elif opt == "preflight":
            if value not in ("auto", "always", "never"):
                raise ConfigError(f"setting 'preflight' must be auto, always or never, got {value!r}")
            opts[opt] = value
        elif opt in {"reclassify", "dry_run", "count_tokens_api"}:
            opts[opt] = as_bool(opt, value)
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

    config = ClassifierConfig(
        name=name,
        key_columns=key_columns,
        text_column=text_column,
        text_template=text_template,
        spec=spec,
        api_version=api_version,
        prices=prices,
        columns=columns,
        unsure=unsure,
        **opts,
    )
    if config.escalate_to is not None:
        if not config.unsure:
            raise ConfigError("setting 'escalate_to' escalates the rows answered unsure: set unsure: true too")
        if config.escalate_to == model:
            raise ConfigError(f"setting 'escalate_to': {model!r} is the classifier's own model; name a stronger one")
    if catalog.is_known(model):
        check_model_settings(config)
    return config


def _pack_sizes(value: Any) -> tuple[int, ...]:
    value = _json_setting("calibration_pack_sizes", value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ConfigError(f"setting 'calibration_pack_sizes' must be a list of pack sizes, got {value!r}")
    sizes = sorted({_as_number("calibration_pack_sizes", v, minimum=2, integer=True) for v in value})
    return tuple(sizes)


def escalation_config(cfg: ClassifierConfig) -> ClassifierConfig | None:
    """The classifier that answers ``cfg``'s unsure rows again: the same prompt on the ``escalate_to``
    model, without the unsure label (it must choose). Its own version; None without escalate_to."""
    if cfg.escalate_to is None:
        return None
    spec = replace(cfg.spec, model=cfg.escalate_to,
                   labels=tuple(label for label in cfg.spec.labels if label.name != UNSURE_LABEL),
                   examples=tuple(e for e in cfg.spec.examples if UNSURE_LABEL not in e.labels))
    # The hard rows, on a dearer model: packed as the classifier packs, or (pack_size: auto, whose
    # calibration measured the classifier's model, not this one) at the smallest candidate size.
    pack_size = min(cfg.calibration_pack_sizes) if cfg.auto_pack_size else cfg.pack_size
    out = replace(cfg, spec=spec, unsure=False, escalate_to=None, prices=None, pack_size=pack_size)
    try:
        if catalog.is_known(cfg.escalate_to):
            check_model_settings(out)
    except ConfigError as exc:
        raise ConfigError(f"setting 'escalate_to': {exc}") from None
    return out


def check_model_settings(config: ClassifierConfig) -> None:
    """Settings the model's facts rule out, named before anything is sent (also run once an unknown
    model has been looked up in the Models API)."""
    spec = config.spec
    info = catalog.model_info(spec.model)
    if spec.output_mode == "json_schema" and not info.json_schema_output:
        raise ConfigError(f"setting 'output_mode': model {spec.model!r} has no JSON-schema output")
    if spec.resolved_output_mode == "tool" and (not info.forced_tool_use or spec.thinking.thinks):
        raise ConfigError(
            f"setting 'output_mode': model {spec.model!r} refuses forced tool use"
            + (" while it thinks, and it cannot stop thinking" if info.forced_tool_use else "")
            + " [REF §6]; use output_mode: json_schema (or leave it unset)")
    if config.max_usd_per_run is not None or config.max_usd_per_day is not None:
        if config.prices is None and not info.prices:
            raise ConfigError("settings 'max_usd_per_run'/'max_usd_per_day' need prices: model "
                              f"{spec.model!r} has none in our table; give them under 'prices'")


def _sampling(merged: Mapping[str, Any], model: str, api_version: str | None) -> tuple[tuple[str, float], ...]:
    """Sampling parameters, only where the API version takes them: 2026-10-21 (what SDK 2.x sends)
    refuses temperature/top_p/top_k even at their defaults, in every request of a batch [MIG]."""
    given = {k: merged[k] for k in _SAMPLING_NAMES
             if merged.get(k) is not None and str(merged[k]).strip().lower() not in {"", "none", "null"}}
    if not given:
        return ()
    version = api_version or catalog.DEFAULT_API_VERSION
    rules = catalog.api_version_rules(version)
    refused = [k for k in given if k in rules.get("rejects_params", ())]
    if refused:
        raise ConfigError(
            f"setting(s) {refused}: anthropic-version {version} (sent by the anthropic SDK 2.x) rejects "
            "sampling parameters, even at their default values, in every request [MIG]. Remove them; a "
            "classifier does not need them. To keep them, pin an older API version with "
            "api_version: '2023-06-01' (models from Claude 4.7 on still reject non-default values there).")
    out = []
    for key, value in sorted(given.items()):
        number = _as_number(key, value, minimum=0, integer=key == "top_k")
        if key != "top_k" and number > 1:
            raise ConfigError(f"setting {key!r} must be between 0 and 1, got {value!r}")
        out.append((key, number))
    newer = rules.get("non_default_sampling_rejected_from_tokenizer")
    if catalog.is_known(model) and newer and catalog.model_info(model).tokenizer == newer:
        bad = [k for k, v in out if not (k == "temperature" and v == 1.0)]
        if bad:
            raise ConfigError(f"setting(s) {bad}: model {model!r} rejects non-default sampling values even "
                              f"under anthropic-version {version} [MIG][S5]")
    return tuple(out)


def _columns(value: Any, key_columns: tuple[str, ...]) -> tuple[str, ...]:
    """Pass-through columns: a list of names (or its JSON / Python text, as a dbt var renders it), or
    one name. Whether they exist is checked against the source at the start of the run."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in {"", "none", "null"}:
            return ()
        if text.startswith("["):
            import ast

            try:
                value = json.loads(text)
            except ValueError:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise ConfigError(f"setting 'columns' must be a list of column names, got {value!r}") from None
        else:
            value = [text]
    if value is None:
        return ()
    if not isinstance(value, Sequence) or not all(isinstance(c, str) and c.strip() for c in value):
        raise ConfigError(f"setting 'columns' must be a list of column names, got {value!r}")
    cols = tuple(value)
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise ConfigError(f"setting 'columns' repeats {dupes}")
    keys = [c for c in cols if c in key_columns]
    if keys:
        raise ConfigError(f"setting 'columns': {keys} already in the output as the key")
    taken = [c for c in cols if c.lower() in OUTPUT_COLUMNS]  # the output's own columns cannot be overwritten
    if taken:
        raise ConfigError(f"setting 'columns': {taken} would clash with the output's own column(s) of that name")
    return cols


def _json_setting(name: str, value: Any) -> Any:
    """A mapping setting may arrive as JSON text (a dbt var renders to a string)."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() in {"", "none", "null"}:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ConfigError(f"setting {name!r} must be a mapping (or its JSON), got {value!r}") from None


def _prices(value: Any) -> Mapping[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"setting 'prices' must be a mapping of {list(PRICE_KEYS)} to USD per million tokens")
    unknown = sorted(set(value) - set(PRICE_KEYS))
    if unknown:
        raise ConfigError(f"setting 'prices': unknown key(s) {unknown}; use {list(PRICE_KEYS)}")
    for key in ("input", "output"):
        if key not in value:
            raise ConfigError(f"setting 'prices' needs {key!r} (USD per million tokens)")
    out = {k: _as_number(f"prices.{k}", v, minimum=0, integer=False) for k, v in value.items()}
    # Cache prices default to the documented multipliers of the input price [PRC].
    out.setdefault("cache_write_5m", out["input"] * 1.25)
    out.setdefault("cache_write_1h", out["input"] * 2.0)
    out.setdefault("cache_read", out["input"] * 0.1)
    return out


def describe(config: ClassifierConfig) -> dict:
    """JSON-able summary of the settings, stored with each version (no secrets live in config)."""
    data = asdict(config)
    data["version"] = config.version
    return data


def recorded_spec(settings: Mapping[str, Any]) -> prompts.PromptSpec:
    """The prompt spec of a version from what ``describe`` recorded (``cb_versions.settings_json``)."""
    spec = settings["spec"]
    return prompts.PromptSpec(
        model=spec["model"],
        instructions=spec["instructions"],
        labels=tuple(prompts.Label(**label) for label in spec["labels"]),
        examples=tuple(prompts.Example(e["text"], tuple(e["labels"])) for e in spec["examples"]),
        multi_label=spec["multi_label"],
        output_mode=spec["output_mode"],
        cache_ttl=spec["cache_ttl"],
        sampling=tuple(tuple(pair) for pair in spec.get("sampling") or ()),  # older versions sent temperature
        extra=tuple(tuple(pair) for pair in spec["extra"]),
        answer_format=spec.get("answer_format", "grouped"),  # versions recorded before it existed were grouped
    )
