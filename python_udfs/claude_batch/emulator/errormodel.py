"""The emulator's error model: answers that are wrong on purpose, at documented and seeded rates.

Off by default. ``answer_errors`` in the fault configuration (``POST /_emulator/faults``,
``Emulator(faults=...)``, ``emu.set_faults(answer_errors={...})``, ``--faults``) turns it on; like
the other batch faults it is copied into a batch when the batch is created, so a batch's answers
never change afterwards. ``/v1/messages`` calls use the configuration live.

What it perturbs: the label(s) the emulator would otherwise give a row (a scripted directive, the
responder hook, else the lexical heuristic: that answer is the "truth" here). Rows left out or
answered with raw text on purpose (``omit``, ``raw`` directives) are not touched. It applies to
requests that pack rows (``<rN>`` tags: our client's grouped and keyed answer formats).

This is a model of a model, with made-up parameters, not a measurement of Claude. Its shape follows
the published evidence on packing several items in one prompt (../shared/reference/cost-model.md,
last section): errors grow with the pack and with an item's position in it (Lin et al. 2024,
arXiv 2309.00384), and listing which items carry a label (our grouped format) does worse than one
label per item (Wang et al. 2024, arXiv 2406.10786). The sizes of those effects are settings.

The rule, for a row at 1-based ``position`` in a request of ``pack_size`` rows, on ``model``:

    p_error = min(max_error, base(model) + pack_growth * (pack_size - 1)
                             + position_growth * (position - 1)
                             + (grouped_extra if the answer is grouped and pack_size > 1 else 0))

``base(model)`` is ``models[model]`` when listed, else ``base_error``. At one row a request the
two formats ask the same question, so ``grouped_extra`` only applies to packs of two rows or more.

Each row gets a difficulty ``d = H(seed, "difficulty", model, text)`` in [0, 1) (a SHA-256 hash,
faults.unit_hash): the same text on the same model is exactly as hard in every pack, at every
position and in either format. Then:

- ``d < unsure_rate``: an unsure answer (the hardest rows): the label ``unsure_label`` (default
  ``unsure``) when the request's labels include it, else the neutral-like label (named like
  neutral/other/unknown/none/mixed) if there is one, else the row is left out of the answer;
- ``d < unsure_rate + p_error``: a wrong answer: the true label is replaced by a wrong one, chosen
  by ``c = H(seed, "confusion", model, text)`` from ``confusion[true label]`` (weights over wrong
  labels; labels the request does not allow are ignored), else uniformly among the request's other
  labels. Multi-label rows: one of the true labels (picked by ``H(seed, "which", model, text)``) is
  replaced by its confusion; if the replacement is already among them, that label is just dropped
  (a row keeps at least one label);
- otherwise the true answer.

So, over many distinct texts, the share of unsure rows is ``unsure_rate``, of wrong rows
``p_error`` and of right rows ``1 - unsure_rate - p_error`` (while their sum stays <= 1); and
because the difficulty is shared, a row wrong in a small pack is also wrong in a bigger one at the
same or a later position (errors are nested, as a real model's hard items are hard everywhere): the
share of rows whose label differs between pack A and pack B is the difference of their error rates
(where the wrong labels agree, which they do: the confusion draw depends on the text alone).
Deterministic given seed, text, model, pack size and position.

Configuration keys (all optional; unknown keys are refused):

- ``seed`` (integer, default 0);
- ``base_error`` (0-1, default 0), ``models`` ({model id: 0-1}) for per-model base rates;
- ``pack_growth`` (per row of the pack beyond the first), ``position_growth`` (per position after
  the first), ``grouped_extra`` (grouped answers in packs of 2+): all default 0;
- ``confusion``: ``"uniform"`` (default) or {true label: {wrong label: weight}};
- ``unsure_rate`` (0-1, default 0), ``unsure_label`` (default ``"unsure"``);
- ``max_error`` (0-1, default 1): cap on p_error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .faults import unit_hash
from ..errors import ConfigError

KEYS = frozenset({
    "seed", "base_error", "models", "pack_growth", "position_growth", "grouped_extra", "confusion",
    "unsure_rate", "unsure_label", "max_error",
})
_RATES = ("base_error", "pack_growth", "position_growth", "grouped_extra", "unsure_rate", "max_error")


def _rate(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{where}: expected a number between 0 and 1, got {value!r}")
    return float(value)


def validate(config: Any) -> dict:
    """A checked copy of an ``answer_errors`` configuration; raises ValueError naming the bad key."""
    if not isinstance(config, dict):
        raise ConfigError("answer_errors: expected a JSON object")
    unknown = set(config) - KEYS
    if unknown:
        raise ConfigError(f"answer_errors: unknown keys {sorted(unknown)}")
    out = json.loads(json.dumps(config))
    for key in _RATES:
        if out.get(key) is not None:
            _rate(f"answer_errors.{key}", out[key])
    seed = out.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"answer_errors.seed: expected an integer, got {seed!r}")
    models = out.get("models")
    if models is not None:
        if not isinstance(models, dict):
            raise ConfigError("answer_errors.models: expected {model id: rate}")
        for name, value in models.items():
            _rate(f"answer_errors.models.{name}", value)
    confusion = out.get("confusion")
    if confusion is not None and confusion != "uniform":
        if not isinstance(confusion, dict):
            raise ConfigError('answer_errors.confusion: expected "uniform" or {true label: {wrong label: weight}}')
        for true, row in confusion.items():
            if not isinstance(row, dict):
                raise ConfigError(f"answer_errors.confusion.{true}: expected {{wrong label: weight}}")
            for wrong, weight in row.items():
                if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                    raise ConfigError(f"answer_errors.confusion.{true}.{wrong}: expected a weight >= 0, got {weight!r}")
    label = out.get("unsure_label")
    if label is not None and (not isinstance(label, str) or not label):
        raise ConfigError(f"answer_errors.unsure_label: expected a label name, got {label!r}")
    return out


@dataclass(frozen=True)
class ErrorModel:
    seed: int = 0
    base_error: float = 0.0
    models: tuple[tuple[str, float], ...] = ()
    pack_growth: float = 0.0
    position_growth: float = 0.0
    grouped_extra: float = 0.0
    confusion: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()  # () = uniform
    unsure_rate: float = 0.0
    unsure_label: str = "unsure"
    max_error: float = 1.0

    @classmethod
    def from_config(cls, config: Mapping | None) -> "ErrorModel | None":
        """None when the configuration is absent (the error model is off)."""
        if config is None:
            return None
        checked = validate(dict(config))
        confusion = checked.get("confusion")
        return cls(
            seed=int(checked.get("seed") or 0),
            base_error=float(checked.get("base_error") or 0.0),
            models=tuple(sorted((str(k), float(v)) for k, v in (checked.get("models") or {}).items())),
            pack_growth=float(checked.get("pack_growth") or 0.0),
            position_growth=float(checked.get("position_growth") or 0.0),
            grouped_extra=float(checked.get("grouped_extra") or 0.0),
            confusion=() if confusion in (None, "uniform") else tuple(
                (str(t), tuple((str(w), float(x)) for w, x in row.items())) for t, row in confusion.items()),
            unsure_rate=float(checked.get("unsure_rate") or 0.0),
            unsure_label=str(checked.get("unsure_label") or "unsure"),
            max_error=1.0 if checked.get("max_error") is None else float(checked["max_error"]),
        )

    # ------------------------------------------------------------------ the rates

    def base(self, model: str) -> float:
        return dict(self.models).get(model, self.base_error)

    def error_rate(self, model: str, pack_size: int, position: int, grouped: bool) -> float:
        """p_error of a row at ``position`` (1-based) in a pack of ``pack_size`` rows."""
        p = (self.base(model) + self.pack_growth * (pack_size - 1) + self.position_growth * (position - 1)
             + (self.grouped_extra if grouped and pack_size > 1 else 0.0))
        return min(self.max_error, p)

    def difficulty(self, model: str, text: str) -> float:
        return unit_hash(self.seed, "difficulty", model, text)

    # ------------------------------------------------------------------ one row

    def wrong_label(self, true: str, allowed: Sequence[str], model: str, text: str) -> str | None:
        """The label a wrong answer gives instead of ``true`` (None: no other label allowed)."""
        others = [name for name in allowed if name != true]
        if not others:
            return None
        weights = dict(dict(self.confusion).get(true, ()))
        choices = [(name, weights[name]) for name in others if weights.get(name, 0) > 0]
        if not choices:
            choices = [(name, 1.0) for name in others]
        total = sum(w for _, w in choices)
        point = unit_hash(self.seed, "confusion", model, text) * total
        for name, weight in choices:
            point -= weight
            if point < 0:
                return name
        return choices[-1][0]

    def perturb(self, labels: Sequence[str], allowed: Sequence[str], *, model: str, text: str, pack_size: int,
                position: int, grouped: bool, neutral: str | None) -> list[str] | None:
        """The labels the row gets (None: the row is left out of the answer)."""
        d = self.difficulty(model, text)
        if d < self.unsure_rate:
            if self.unsure_label in allowed:
                return [self.unsure_label]
            return [neutral] if neutral else None
        if not labels or d >= self.unsure_rate + self.error_rate(model, pack_size, position, grouped):
            return list(labels)
        if len(labels) == 1:
            wrong = self.wrong_label(labels[0], allowed, model, text)
            return [wrong] if wrong else list(labels)
        which = int(unit_hash(self.seed, "which", model, text) * len(labels))
        wrong = self.wrong_label(labels[which], allowed, model, text)
        if wrong is None:
            return list(labels)
        if wrong in labels:
            return [name for i, name in enumerate(labels) if i != which]
        return [wrong if i == which else name for i, name in enumerate(labels)]
