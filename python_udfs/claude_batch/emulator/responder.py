"""Deterministic answers: scripted per row text, a test's hook, else a plain lexical heuristic.

What the emulator answers, in order of precedence, for each row (or for the whole user text when
the request carries no ``<rN>`` rows, see prompts.render_rows):

1. a scripted directive for that exact text (``POST /_emulator/script``, ``Emulator.script``);
2. the responder hook (``Emulator.set_responder(fn)``, ``fn(row_text, labels, params)``), unless
   it returns None;
3. the lexical heuristic below.

Directives: ``"label"``; ``["a", "b"]`` (multi-label); ``{"label": "not-a-label"}`` (any label, even
one outside the allowed set); ``{"omit": true}`` (the row is left out of the answer);
``{"raw": "text"}`` (the whole answer becomes that raw text: malformed output on purpose).

The lexical heuristic (no model, no randomness; it is only meant to make demos plausible):

- Labels come from the JSON schema's ``enum`` (output_config format or the forced tool's
  input_schema), else from the system text's ``Labels:`` lines (``- name: description``), which also
  give the descriptions. Few-shot examples in the system text (``<rN>text`` rows
  followed by ``Answer: {"groups": ...}``) add their words to the labels they were given.
- A small built-in lexicon of common sentiment words (love, great, excellent, ... / terrible, awful,
  worst, broke, ...) is credited to labels whose name or description suggests positive or negative.
- Words are lowercased runs of characters between separators (digits, ASCII punctuation, spaces,
  common Unicode punctuation); words shorter than 3 characters and common stop words are ignored.
  Two words match when equal, or when they share a prefix of at least 4 letters that covers all
  but at most 2 letters of the shorter one (light stemming: love/loved, broke/broken,
  terrible/terribly).
- Score of a label = sum over the text's distinct words of the best matching weight in its
  vocabulary (label name 3, built-in lexicon 2, description and example words 1).
- Single label: the best score; ties (including no match at all) go to a label named like
  neutral/other/unknown/none/mixed if there is one, else to the first tied label.
- Multi-label (system text says "one or more of the labels", or the schema asks for an array of
  labels): every label scoring at least half the best score; at least one.

Request shapes understood: our own client's (prompts.py: rows in the user message, answer JSON
grouped by label ``{"groups": [{"label", "ids"}]}`` or keyed by row ``{"rows": [{"id", "label"}]}``
(``"labels": [...]`` when multi-label), forced by output_config json_schema or a forced tool; the
answer comes back in the format the schema asks for), and any other forced tool / JSON schema,
answered with an instance of the schema whose enum fields hold the chosen label(s).

Wrong on purpose: with ``answer_errors`` in the fault configuration, the label(s) chosen above for
each packed row are perturbed by the seeded error model in errormodel.py (off by default).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .. import prompts
from .errormodel import ErrorModel
from ..errors import ConfigError

Directive = Any  # str | list[str] | {"label"} | {"labels"} | {"omit"} | {"raw"} | None
Hook = Callable[[str, tuple, dict], Directive]

# Word separators: ASCII non-letters and common Unicode punctuation. str.translate + split runs
# several times faster than a regex, and the word loop is the emulator's hottest code.
_SEPARATORS = {c: " " for c in range(128) if not chr(c).isalpha()}
_SEPARATORS.update({ord(c): " " for c in "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00a1\u00bf\u00b7\u2022\u00a0"})
_STOP = frozenset(
    """
    the and for with that this are was were but you your yours they them their its has have had
    from about into than then there these those what which when where who whom will would should could
    can all any each every one more most other some such only own same very just also our ours out
    over under again further once here why how both few nor not too via per upon onto off been being
    does did doing done she him his her hers it is be or an a if so no of to in on at by as we us i me
    my mine row rows text texts label labels give given answer data tag tags json ids
    """.split()
)
_POSITIVE_WORDS = """
    love loved lovely great excellent amazing best awesome fantastic perfect wonderful happy recommend
    good nice like enjoy enjoyed satisfied pleased superb outstanding brilliant delight delighted
    favorite favourite glad thanks thank impressed beautiful reliable fast easy helpful
""".split()
_NEGATIVE_WORDS = """
    terrible awful worst broke broken hate hated bad poor horrible disappointed disappointing useless
    refund waste defective junk failed fail fails stopped complaint angry rude problem crash crashed
    bug buggy scam damaged late slow worse never unhappy annoying cheap garbage return returned
""".split()
_SUGGESTS_POSITIVE = {"positive", "good", "praise", "praises", "happy", "satisfied", "pleased",
                      "favorable", "favourable", "like", "likes", "love", "compliment", "promoter"}
_SUGGESTS_NEGATIVE = {"negative", "bad", "complaint", "complains", "complain", "unhappy",
                      "dissatisfied", "critical", "criticism", "angry", "problem", "problems",
                      "issue", "issues", "detractor", "poor", "unfavorable", "unfavourable"}
_NEUTRAL_NAMES = ("neutral", "other", "unknown", "none", "mixed", "misc", "unclear", "n/a", "na")

W_NAME, W_LEXICON, W_WORD = 3.0, 2.0, 1.0


def split_words(text: str) -> list[str]:
    """Lowercased words: runs of characters between separators (digits, punctuation, spaces)."""
    return text.lower().translate(_SEPARATORS).split()


def words(text: str) -> list[str]:
    """The words that count: 3 letters or more, not a stop word."""
    return [w for w in split_words(text) if len(w) >= 3 and w not in _STOP]


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def words_match(a: str, b: str) -> bool:
    if a == b:
        return True
    common = _common_prefix(a, b)
    return common >= 4 and common >= min(len(a), len(b)) - 2


def _index_key(word: str) -> str:
    return word[:4] if len(word) >= 4 else word


def _is_neutral(name: str) -> bool:
    lowered = name.lower()
    return lowered in _NEUTRAL_NAMES or any(lowered.startswith(n) for n in _NEUTRAL_NAMES[:3])


class LabelModel:
    """Vocabulary per label and the scoring rule; built once per label set and system text."""

    def __init__(
        self,
        names: tuple[str, ...],
        descriptions: dict[str, str],
        examples: dict[str, list[str]],
    ) -> None:
        self.names = names
        self._index: dict[str, list[tuple[str, int, float]]] = {}
        # No word matched: the neutral-like label, else the first one.
        self._fallback = next((n for n in names if _is_neutral(n)), names[0] if names else "")
        self._word_cache: dict[str, tuple[tuple[int, float], ...]] = {}
        self._seen: set[str] = set()  # words already looked up
        self._matching: set[str] = set()  # those that match some label
        for position, name in enumerate(names):
            vocab: dict[str, float] = {}

            def add(word: str, weight: float) -> None:
                if vocab.get(word, 0.0) < weight:
                    vocab[word] = weight

            name_words = words(name.replace("_", " ").replace("-", " ")) or [name.lower()]
            description_words = words(descriptions.get(name, ""))
            for w in description_words:
                add(w, W_WORD)
            for text in examples.get(name, ()):
                for w in words(text):
                    add(w, W_WORD)
            hints = set(name_words) | set(description_words)
            positive = bool(hints & _SUGGESTS_POSITIVE)
            negative = bool(hints & _SUGGESTS_NEGATIVE)
            if positive and not negative:
                for w in _POSITIVE_WORDS:
                    add(w, W_LEXICON)
            if negative and not positive:
                for w in _NEGATIVE_WORDS:
                    add(w, W_LEXICON)
            for w in name_words:
                add(w, W_NAME)
            for w, weight in vocab.items():
                self._index.setdefault(_index_key(w), []).append((w, position, weight))

    def word_scores(self, word: str) -> tuple[tuple[int, float], ...]:
        """Sparse ((label position, weight), ...) for one lowercased word; () for most words."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        result: tuple[tuple[int, float], ...] = ()
        if len(word) >= 3 and word not in _STOP:
            best: dict[int, float] = {}
            for candidate, position, weight in self._index.get(_index_key(word), ()):
                if weight > best.get(position, 0.0) and words_match(word, candidate):
                    best[position] = weight
            result = tuple(sorted(best.items()))
        if len(self._word_cache) < 100_000:
            self._word_cache[word] = result
        return result

    def scores(self, text: str) -> list[float]:
        total = [0.0] * len(self.names)
        distinct = set(split_words(text))
        if not self._seen.issuperset(distinct):
            for word in distinct - self._seen:
                if self.word_scores(word):
                    self._matching.add(word)
                if len(self._seen) < 200_000:
                    self._seen.add(word)
        # Set operations run in C: only the few words that match a label reach Python code.
        cache = self._word_cache
        for word in self._matching.intersection(distinct):
            for position, weight in cache.get(word) or self.word_scores(word):
                total[position] += weight
        return total

    def choose(self, text: str, multi: bool) -> list[str]:
        if not self.names:
            return []
        scores = self.scores(text)
        best = max(scores)
        if best == 0:
            return [self._fallback]
        if multi:
            return [n for n, s in zip(self.names, scores) if s >= best / 2]
        first = scores.index(best)
        if best in scores[first + 1 :]:  # a tie
            return [self._neutral or self.names[first]]
        return [self.names[first]]

    @property
    def _neutral(self) -> str | None:
        return next((n for n in self.names if _is_neutral(n)), None)


# ---------------------------------------------------------------------------- request reading


def _join_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or ():
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text") or "")
    return "\n".join(parts)


def user_text(params: dict) -> str:
    """Text of the last user message (where our client puts the rows)."""
    for message in reversed(params.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            return _join_text(message.get("content"))
    return ""


def system_text(params: dict) -> str:
    return _join_text(params.get("system"))


_LABEL_LINE_RE = re.compile(r"^\s*[-*]\s*([^:\n]+?)\s*(?::\s*(.*))?$")
_ANSWER_RE = re.compile(r"Answer:\s*(\{.*\})\s*$", re.MULTILINE)


def parse_system(system: str) -> tuple[list[str], dict[str, str], dict[str, list[str]], bool]:
    """(label names, descriptions, example texts per label, multi-label?) from a system prompt."""
    names: list[str] = []
    descriptions: dict[str, str] = {}
    lines = system.splitlines()
    for i, line in enumerate(lines):
        if line.strip().lower() != "labels:":
            continue
        for follow in lines[i + 1 :]:
            match = _LABEL_LINE_RE.match(follow)
            if not follow.strip() or not match:
                break
            name = match.group(1).strip()
            names.append(name)
            descriptions[name] = (match.group(2) or "").strip()
        break
    examples: dict[str, list[str]] = {}
    # Each example block: rows, then "Answer: {json}".
    start = 0
    for answer in _ANSWER_RE.finditer(system):
        segment = system[start : answer.start()]
        start = answer.end()
        rows = dict(prompts.parse_rows(segment))
        try:
            payload = json.loads(answer.group(1))
        except ValueError:
            continue
        payload = payload if isinstance(payload, dict) else {}
        for group in payload.get("groups") or ():
            if not isinstance(group, dict):
                continue
            for item_id in group.get("ids") or ():
                if item_id in rows:
                    examples.setdefault(str(group.get("label")), []).append(rows[item_id])
        for entry in payload.get("rows") or ():  # the keyed answer format
            if not isinstance(entry, dict) or entry.get("id") not in rows:
                continue
            given = entry.get("labels") if isinstance(entry.get("labels"), list) else [entry.get("label")]
            for label in given:
                examples.setdefault(str(label), []).append(rows[entry["id"]])
    multi = "one or more of the labels" in system
    return names, descriptions, examples, multi


def _enum_of(schema: Any) -> list[str] | None:
    if isinstance(schema, dict):
        if isinstance(schema.get("enum"), list):
            return [str(v) for v in schema["enum"]]
        for key in ("items", "anyOf", "oneOf", "allOf", "properties"):
            value = schema.get(key)
            values = value.values() if isinstance(value, dict) and key == "properties" else (
                value if isinstance(value, list) else [value]
            )
            for sub in values:
                found = _enum_of(sub)
                if found:
                    return found
    return None


def _groups_label_schema(schema: Any) -> dict | None:
    """The ``label`` property schema when ``schema`` is our client's groups answer format."""
    try:
        item = schema["properties"]["groups"]["items"]["properties"]
        if "label" in item and "ids" in item:
            return item["label"]
    except (KeyError, TypeError):
        pass
    return None


def _keyed_label_schema(schema: Any) -> dict | None:
    """The label (or labels) property schema when ``schema`` is our client's keyed answer format."""
    try:
        item = schema["properties"]["rows"]["items"]["properties"]
        if "id" in item and ("label" in item or "labels" in item):
            return item.get("label") or item["labels"]
    except (KeyError, TypeError):
        pass
    return None


@dataclass
class Answer:
    """What the model 'said': a text block, or a tool_use block."""

    text: str | None = None
    tool_name: str | None = None
    tool_input: Any = None

    @property
    def is_tool(self) -> bool:
        return self.tool_name is not None


@dataclass
class _Directive:
    labels: list[str] = field(default_factory=list)
    omit: bool = False
    raw: str | None = None


def _normalize(directive: Directive) -> _Directive | None:
    if directive is None:
        return None
    if isinstance(directive, str):
        return _Directive([directive])
    if isinstance(directive, (list, tuple)):
        return _Directive([str(d) for d in directive])
    if isinstance(directive, dict):
        if directive.get("raw") is not None:
            return _Directive(raw=str(directive["raw"]))
        if directive.get("omit"):
            return _Directive(omit=True)
        if "labels" in directive:
            return _Directive([str(d) for d in directive["labels"]])
        if "label" in directive:
            return _Directive([str(directive["label"])])
    raise ConfigError(f"not a directive: {directive!r}")


def validate_directive(directive: Directive) -> None:
    """Raise ValueError when a scripted directive has an unknown shape."""
    if _normalize(directive) is None:
        raise ConfigError("a directive cannot be null")


def _schema_instance(schema: Any, choose_one: Callable[[list[str]], str], choose_many) -> Any:
    """A value following ``schema``, enum fields filled with the chosen label(s)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return choose_one([str(v) for v in schema["enum"]])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _schema_instance(schema[key][0], choose_one, choose_many)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return {
            name: _schema_instance(sub, choose_one, choose_many)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        items = schema.get("items") or {}
        enum = _enum_of(items) if isinstance(items, dict) and "properties" not in items else None
        if enum:
            return choose_many(enum)
        return [_schema_instance(items, choose_one, choose_many)]
    if kind == "string":
        return "emulated"
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return None


class Responder:
    """Holds the script and the hook; ``answer(params)`` is pure given those."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: dict[str, Directive] = {}
        self._hook: Hook | None = None
        self._models: dict[tuple, tuple[LabelModel, bool]] = {}

    # --- configuration

    def script(self, answers: dict[str, Directive], *, replace: bool = False) -> None:
        for directive in answers.values():
            validate_directive(directive)
        with self._lock:
            if replace:
                self._script = {}
            self._script.update(answers)

    def clear_script(self) -> None:
        with self._lock:
            self._script = {}

    def script_snapshot(self) -> dict[str, Directive]:
        with self._lock:
            return dict(self._script)

    def set_hook(self, hook: Hook | None) -> None:
        self._hook = hook

    @property
    def has_hook(self) -> bool:
        return self._hook is not None

    # --- answering

    def _directive(self, text: str, labels: tuple[str, ...], params: dict) -> _Directive | None:
        scripted = self._script.get(text)
        if scripted is not None:
            return _normalize(scripted)
        hook = self._hook
        if hook is not None:
            return _normalize(hook(text, labels, params))
        return None

    def _model(self, names: tuple[str, ...], system: str) -> tuple[LabelModel, bool, tuple[str, ...]]:
        key = (names, system)
        cached = self._models.get(key)
        if cached is None:
            sys_names, descriptions, examples, multi = parse_system(system)
            label_names = names or tuple(sys_names)
            cached = (LabelModel(label_names, descriptions, examples), multi)
            with self._lock:
                if len(self._models) > 256:
                    self._models.clear()
                self._models[key] = cached
        model, multi = cached
        return model, multi, model.names

    def answer(self, params: dict, errors: ErrorModel | None = None) -> Answer:
        """``errors``: the error model to perturb packed rows' labels with (None: off)."""
        tool_name, schema = self._output_target(params)
        text = user_text(params)
        system = system_text(params)
        keyed = False
        label_schema = _groups_label_schema(schema) if schema is not None else None
        if schema is not None and label_schema is None:
            label_schema = _keyed_label_schema(schema)
            keyed = label_schema is not None
        enum = _enum_of(label_schema if label_schema is not None else schema) if schema else None
        model, multi, names = self._model(tuple(enum or ()), system)
        rows = prompts.parse_rows(text)

        if rows and (label_schema is not None or (schema is None and names)):
            payload = self._answer_rows(rows, model, multi, names, params, errors, keyed)
            if isinstance(payload, str):  # raw directive
                return Answer(text=payload)
            if tool_name:
                return Answer(tool_name=tool_name, tool_input=payload)
            return Answer(text=json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

        directive = self._directive(text, names, params)
        if directive is not None and directive.raw is not None:
            return Answer(text=directive.raw)
        if schema is not None:

            def choose(options: list[str], many: bool) -> list[str]:
                if directive is not None:
                    return list(directive.labels) if many else directive.labels[:1] or options[:1]
                chooser = model if tuple(options) == names else self._model(tuple(options), system)[0]
                return chooser.choose(text, many)

            payload = _schema_instance(
                schema, lambda options: choose(options, False)[0], lambda options: choose(options, True)
            )
            if tool_name:
                return Answer(tool_name=tool_name, tool_input=payload if payload is not None else {})
            return Answer(text=json.dumps(payload, separators=(",", ":"), ensure_ascii=False))
        if directive is not None:
            return Answer(text=", ".join(directive.labels))
        if names:
            return Answer(text=", ".join(model.choose(text, multi)))
        return Answer(text="This is an offline emulated reply.")

    def _answer_rows(
        self,
        rows: Iterable[tuple[int, str]],
        model: LabelModel,
        multi: bool,
        names: tuple[str, ...],
        params: dict,
        errors: ErrorModel | None = None,
        keyed: bool = False,
    ) -> dict | str:
        if errors is not None or keyed:
            return self._answer_rows_per_row(list(rows), model, multi, names, params, errors, keyed)
        groups: dict[str, list[int]] = {}
        if not self._script and self._hook is None:
            # The common case, kept tight: it runs once per row of every batch request.
            choose = model.choose
            for item_id, row in rows:
                for label in choose(row, multi):
                    if label in groups:
                        groups[label].append(item_id)
                    else:
                        groups[label] = [item_id]
            rows = ()
        for item_id, row in rows:
            directive = self._directive(row, names, params)
            if directive is None:
                labels = model.choose(row, multi)
            elif directive.raw is not None:
                return directive.raw
            elif directive.omit:
                continue
            else:
                labels = directive.labels
            for label in labels:
                groups.setdefault(label, []).append(item_id)
        order = {name: i for i, name in enumerate(names)}
        ordered = sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        return {"groups": [{"label": label, "ids": sorted(ids)} for label, ids in ordered]}

    def _answer_rows_per_row(
        self,
        rows: list[tuple[int, str]],
        model: LabelModel,
        multi: bool,
        names: tuple[str, ...],
        params: dict,
        errors: ErrorModel | None,
        keyed: bool,
    ) -> dict | str:
        """Each row's labels, in the request's order (its position matters to the error model),
        then the answer in the format the schema asks for."""
        answered: list[tuple[int, list[str]]] = []
        model_id = str(params.get("model") or "")
        for position, (item_id, row) in enumerate(rows, start=1):
            directive = self._directive(row, names, params)
            if directive is None:
                labels = model.choose(row, multi)
            elif directive.raw is not None:
                return directive.raw
            elif directive.omit:
                continue
            else:
                labels = directive.labels
            if errors is not None:
                labels = errors.perturb(labels, names, model=model_id, text=row, pack_size=len(rows),
                                        position=position, grouped=not keyed, neutral=model._neutral)
                if labels is None:
                    continue
            answered.append((item_id, labels))
        if keyed:
            key = "labels" if multi else "label"
            return {"rows": [{"id": item_id, key: list(labels) if multi else labels[0]}
                             for item_id, labels in sorted(answered) if labels]}
        groups: dict[str, list[int]] = {}
        for item_id, labels in answered:
            for label in labels:
                groups.setdefault(label, []).append(item_id)
        order = {name: i for i, name in enumerate(names)}
        ordered = sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        return {"groups": [{"label": label, "ids": sorted(ids)} for label, ids in ordered]}

    @staticmethod
    def _output_target(params: dict) -> tuple[str | None, dict | None]:
        """(forced tool name, schema) — a forced tool wins over output_config."""
        choice = params.get("tool_choice") or {}
        tools = [t for t in params.get("tools") or () if isinstance(t, dict)]
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind == "tool":
            for tool in tools:
                if tool.get("name") == choice.get("name"):
                    return tool["name"], tool.get("input_schema") or {}
        if kind == "any" and tools:
            return tools[0]["name"], tools[0].get("input_schema") or {}
        fmt = (params.get("output_config") or {}).get("format")
        if isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict):
            return None, fmt["schema"]
        return None, None


def tool_use_id(payload: Any) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return "toolu_" + digest[:24]
