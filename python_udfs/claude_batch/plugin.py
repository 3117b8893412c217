"""A dbt-duckdb plugin that adds ``claude_classify(text, labels)`` to SQL.

Profile (``profiles.yml``)::

    plugins:
      - module: claude_batch.plugin
        config:
          model: claude-haiku-5-5
          max_rows: 1000          # most distinct texts one connection may send: stops accidental scans
          pack_size: 25
          instructions: "Classify the sentiment of each customer review."

SQL::

    select claude_classify(review, ['positive', 'negative']) as sentiment from reviews
    select claude_classify_with(review, ['bug', 'feature', 'question'], 'Triage support tickets.') ...

The function is vectorised over DuckDB's Arrow batches: the distinct texts of a batch are packed
(``pack_size`` rows a request, as in the pipeline) and answered through the real-time path
(realtime.py: paced under ``realtime_rpm`` / ``realtime_itpm`` / ``realtime_otpm``). A row whose
answer is missing or not one of the labels is NULL, as is a NULL text or label list. Answers are
remembered per connection, so re-running a query does not pay twice. Nothing is written to the
state tables: for incremental, crash-safe and half-price classification of a table, use the batch
pipeline (``claude_batch.classify`` in a Python model).

The API key comes from ``ANTHROPIC_API_KEY`` only (and ``ANTHROPIC_BASE_URL`` for the emulator);
it is read at the first call, so profiles without a key still load.

Why two names: DuckDB's Python UDFs cannot be overloaded, and a macro that overloads them would be
per cursor (TEMP), which dbt's cursors do not share.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import pyarrow as pa

from . import catalog, config as config_mod, cost, prompts, realtime
from .logs import info
from .statuses import Outcome
from .errors import ApiContractError, ClaudeBatchError, ConfigError

try:
    from dbt.adapters.duckdb.plugins import BasePlugin
except Exception:  # pragma: no cover - usable on a plain DuckDB connection without dbt
    class BasePlugin:  # type: ignore[no-redef]
        def __init__(self, name: str, plugin_config: dict, credentials: Any = None) -> None:
            self.name = name
            self.creds = credentials
            self.initialize(plugin_config)


DEFAULT_INSTRUCTIONS = "Classify each row of text with the label that fits it best."
_MEMO_MAX = 200_000
# Errors that mean the setup is wrong (key, model, permissions): fail the query rather than NULLs.
_FATAL = realtime.FATAL_ERROR_TYPES


class RowCapExceeded(ClaudeBatchError, RuntimeError):
    """The connection would send more rows than the plugin's ``max_rows``."""


@dataclass(frozen=True)
class UdfSettings:
    model: str = catalog.DEFAULT_MODEL
    instructions: str = DEFAULT_INSTRUCTIONS
    max_rows: int = 1000
    pack_size: int = 25
    max_pack_chars: int = 24_000
    realtime_rpm: int = 50
    realtime_itpm: int = 40_000
    realtime_otpm: int = 8_000
    realtime_concurrency: int = 8
    max_retries: int = 4
    function_name: str = "claude_classify"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, ignore: Sequence[str] = ()) -> "UdfSettings":
        """Validate the plugin's config; ``ignore``: keys dbt-duckdb merges in from ``settings:``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known - set(ignore))
        if unknown:
            raise config_mod.ConfigError(
                f"claude_batch.plugin: unknown setting(s) {unknown}; known: {sorted(known)}"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in config or config[f.name] is None:
                continue
            value = config[f.name]
            if isinstance(f.default, int):
                try:
                    number = int(value)
                except (TypeError, ValueError):
                    raise config_mod.ConfigError(
                        f"claude_batch.plugin: setting {f.name!r} must be a whole number, got {value!r}"
                    ) from None
                if number < 1 or isinstance(value, bool) or number != float(value):
                    raise config_mod.ConfigError(
                        f"claude_batch.plugin: setting {f.name!r} must be a whole number of at least 1, got {value!r}"
                    )
                values[f.name] = number
            else:
                if not isinstance(value, str) or not value.strip():
                    raise config_mod.ConfigError(f"claude_batch.plugin: setting {f.name!r} must be a non-empty string")
                values[f.name] = value
        settings = cls(**values)
        try:
            catalog.model_info(settings.model)
        except catalog.UnknownModelError as exc:
            raise config_mod.ConfigError(f"claude_batch.plugin: setting 'model': {exc}") from None
        if not settings.function_name.isidentifier():
            raise config_mod.ConfigError("claude_batch.plugin: setting 'function_name' must be a plain identifier")
        return settings

    def limits(self) -> realtime.Limits:
        return realtime.Limits(
            rpm=self.realtime_rpm, itpm=self.realtime_itpm, otpm=self.realtime_otpm,
            concurrency=self.realtime_concurrency, max_retries=self.max_retries,
        )


class Classifier:
    """The UDF's state for one connection: settings, row count, answers so far, loop and client."""

    def __init__(self, settings: UdfSettings) -> None:
        self.settings = settings
        self.limits = settings.limits()
        self.rows_sent = 0
        self.billed_usd = 0.0
        self._memo: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._runner: realtime.LoopThread | None = None
        self._client: Any = None

    # ------------------------------------------------------------------ registration
    def register(self, conn: Any) -> None:
        name = self.settings.function_name
        # null_handling special: NULL inputs reach us, and we may answer NULL for a row.
        conn.create_function(name, self._udf2, ["VARCHAR", "VARCHAR[]"], "VARCHAR", type="arrow",
                             null_handling="special")
        conn.create_function(f"{name}_with", self._udf3, ["VARCHAR", "VARCHAR[]", "VARCHAR"], "VARCHAR",
                             type="arrow", null_handling="special")

    def _udf2(self, text: Any, labels: Any) -> pa.Array:
        return self.classify(text.to_pylist(), labels.to_pylist(), None)

    def _udf3(self, text: Any, labels: Any, instructions: Any) -> pa.Array:
        return self.classify(text.to_pylist(), labels.to_pylist(), instructions.to_pylist())

    # ------------------------------------------------------------------ work
    def _spec(self, labels: tuple[str, ...], instructions: str | None) -> prompts.PromptSpec:
        names = [str(n) for n in labels]
        if len(names) < 2 or len(set(names)) != len(names) or any(not n.strip() for n in names):
            raise ConfigError(
                f"{self.settings.function_name}: labels must be at least two distinct non-empty names, got {names}"
            )
        return prompts.PromptSpec(
            model=self.settings.model,
            instructions=(instructions or "").strip() or self.settings.instructions,
            labels=tuple(prompts.Label(n) for n in names),
        )

    def classify(self, texts: list[str | None], labels: list[Any], instructions: list[str | None] | None) -> pa.Array:
        """One Arrow batch: a label (or NULL) per row."""
        n = len(texts)
        out: list[str | None] = [None] * n
        groups: dict[tuple[tuple[str, ...], str | None], list[int]] = {}
        for i in range(n):
            if texts[i] is None or labels[i] is None or any(x is None for x in labels[i]):
                continue  # NULL in, NULL out
            key = (tuple(labels[i]), instructions[i] if instructions else None)
            groups.setdefault(key, []).append(i)

        work: list[tuple[prompts.PromptSpec, str, list[str]]] = []
        versions: dict[tuple[tuple[str, ...], str | None], str] = {}
        new_total = 0
        with self._lock:
            for (names, instr), rows in groups.items():
                spec = self._spec(names, instr)
                version = versions[(names, instr)] = config_mod.classifier_version(spec)
                todo = list(dict.fromkeys(texts[i] for i in rows if (version, texts[i]) not in self._memo))
                if todo:
                    work.append((spec, version, todo))
                    new_total += len(todo)
            if new_total:
                cap = self.settings.max_rows
                if self.rows_sent + new_total > cap:
                    raise RowCapExceeded(
                        f"{self.settings.function_name}: this query would send {new_total} more distinct text(s) "
                        f"to Claude on this connection ({self.rows_sent} sent so far), over max_rows={cap}. "
                        "Raise 'max_rows' in the claude_batch.plugin config of profiles.yml if you mean it, "
                        "or classify large tables with the batch pipeline (claude_batch.classify), which is "
                        "incremental and half the price."
                    )
                self.rows_sent += new_total  # reserved before sending: parallel DuckDB threads see it

        fresh: dict[tuple[str, str], str] = {}
        for spec, version, todo in work:
            fresh.update(self._answer(spec, version, todo))

        with self._lock:
            for key, rows in groups.items():
                version = versions[key]
                for i in rows:
                    # This batch's own answers first: another thread may have cleared the memo.
                    out[i] = fresh.get((version, texts[i])) or self._memo.get((version, texts[i]))
        return pa.array(out, type=pa.string())

    def _answer(self, spec: prompts.PromptSpec, version: str, todo: list[str]) -> dict[tuple[str, str], str]:
        """Send the texts; the valid answers, also remembered for the connection."""
        packs = _packs(todo, self.settings.pack_size, self.settings.max_pack_chars)
        probe = prompts.build_params(spec, [(1, "")], cache=False)
        plan = cost.cache_plan(spec.model, cost.prefix_tokens(probe), expected_requests=len(packs), batch=False)
        requests: list[tuple[str, dict]] = []
        texts_of: dict[str, list[str]] = {}
        for index, pack in enumerate(packs):
            local = list(enumerate(pack, start=1))
            cid = f"udf-{index:06d}"
            requests.append((cid, prompts.build_params(spec, local, cache=plan.mark)))
            texts_of[cid] = [text for _, text in local]

        answers = self._run(requests)
        answered: dict[tuple[str, str], str] = {}
        billed = 0.0
        refused: list[str] = []
        errored = 0
        for cid, result_type, message, error in answers:
            pack_texts = texts_of[cid]
            if result_type != Outcome.SUCCEEDED or message is None:
                inner = (error or {}).get("error") or {}
                if inner.get("type") in _FATAL:
                    refused.append(f"{inner.get('type')}: {inner.get('message')}")
                errored += 1
                continue
            billed += cost.billed_usd(spec.model, cost.Usage.from_api(message.get("usage")))
            outcomes, _ = prompts.parse_answer(spec, message.get("content") or [], range(1, len(pack_texts) + 1))
            for outcome, text in zip(outcomes, pack_texts):
                if outcome.status == Outcome.SUCCEEDED:
                    answered[(version, text)] = outcome.labels[0]
        if refused and not answered:
            raise ApiContractError(f"{self.settings.function_name}: the API refused the requests: {refused[0]}")
        with self._lock:
            if len(self._memo) + len(answered) > _MEMO_MAX:
                self._memo.clear()
            self._memo.update(answered)  # failures are not remembered: a later query tries again
            self.billed_usd += billed
        missing = len(todo) - len(answered)
        info(
            f"{self.settings.function_name}: {len(todo)} text(s) in {len(requests)} request(s), "
            f"{missing} without a valid answer (NULL), {errored} request(s) errored, billed ${billed:.4f}"
        )
        return answered

    def _run(self, requests: list[tuple[str, dict]]) -> list[realtime.Answer]:
        with self._lock:
            if self._runner is None:
                self._runner = realtime.LoopThread(name="claude-classify-udf")
            runner = self._runner
        if self._client is None:
            client = runner.run(_make_client(self.limits))
            with self._lock:
                if self._client is None:
                    self._client = client
        return runner.run(realtime.answer_all(self._client, requests, self.limits))

    def close(self) -> None:
        if self._runner is not None:
            if self._client is not None:
                try:
                    self._runner.run(self._client.close())
                except Exception:
                    pass
            self._runner.close()
            self._runner = None
            self._client = None


def _packs(texts: list[str], pack_size: int, max_chars: int) -> list[list[str]]:
    """Consecutive packs of at most ``pack_size`` texts and ``max_chars`` characters (one at least)."""
    packs: list[list[str]] = []
    current: list[str] = []
    used = 0
    for text in texts:
        if current and (len(current) >= pack_size or used + len(text) > max_chars):
            packs.append(current)
            current, used = [], 0
        current.append(text)
        used += len(text)
    if current:
        packs.append(current)
    return packs


async def _make_client(limits: realtime.Limits) -> Any:
    # On the loop thread, so the connection pool belongs to the loop that uses it.
    return realtime.make_client(limits)


class Plugin(BasePlugin):
    """``plugins: [{module: claude_batch.plugin, config: {...}}]`` in profiles.yml."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        creds = getattr(self, "creds", None)
        # dbt-duckdb merges the profile's `settings:` (DuckDB options) into every plugin's config.
        ignore = list(getattr(creds, "settings", None) or {})
        self.settings = UdfSettings.from_config(plugin_config or {}, ignore=ignore)
        self.classifier = Classifier(self.settings)

    def configure_connection(self, conn: Any) -> None:
        self.classifier.register(conn)
