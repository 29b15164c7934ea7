"""Search spaces: the options a study varies, each a range or a set of choices.

Written on the command line (``--param``, repeatable) or in a YAML/JSON file
(``--space``)::

    --param hidden_size=8:128          whole numbers from 8 to 128 (both ends whole)
    --param lr=1e-4:1e-2:log           numbers, sampled on a log scale
    --param num_layers=1,2,3           choices (numbers, true/false or words)
    --param dropout=0.1                fixed: left out of the search

    # space.yaml
    hidden_size: [8, 128]              # a range: two numbers
    lr: {low: 1e-4, high: 1e-2, log: true}
    pooling: {choices: [mean, attention]}
    dropout: 0.1                       # fixed

A given option replaces the task's default range for it (narrowing or widening it);
the other defaults stay.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError


@dataclass(frozen=True)
class Param:
    """One searched option: a range [low, high] (whole numbers when ``whole``; sampled on
    a log scale when ``log``) or ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    whole: bool = False
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            if len(self.choices) < 2:
                raise LstmkitError(f"{self.name} has {len(self.choices)} choice(s); give two or "
                                   "more, or fix it to one value (name=value)")
            return
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise LstmkitError(f"{self.name}'s range must have finite ends, got "
                               f"{self.low}:{self.high}")
        if self.low >= self.high:
            raise LstmkitError(f"{self.name}'s range {self.low:g}:{self.high:g} is empty or "
                               "backwards; give LOW:HIGH with LOW < HIGH")
        if self.log and self.low <= 0:
            raise LstmkitError(f"{self.name}'s range {self.low:g}:{self.high:g} cannot be "
                               "searched on a log scale: its low end must be above 0")

    def suggest(self, trial: Any) -> Any:
        """This option's value for an Optuna trial."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.whole:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def values(self) -> list[Any]:
        """The values that bound the option: both ends, or every choice."""
        if self.choices is not None:
            return list(self.choices)
        kind = int if self.whole else float
        return [kind(self.low), kind(self.high)]

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(map(str, self.choices))
        return f"{self.low:g} .. {self.high:g}{' (log)' if self.log else ''}"


def _scalar(text: str) -> Any:
    """A value written on the command line: a number, true/false, or the word itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def parse_param(text: str) -> tuple[str, Param | Any]:
    """``name=spec`` (module doc) -> (name, Param), or (name, value) for a fixed option."""
    name, equals, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    if not equals or not name or not spec.strip():
        raise LstmkitError(f"--param {text!r} is not NAME=SPEC; write e.g. hidden_size=8:128, "
                           "lr=1e-4:1e-2:log, num_layers=1,2 or dropout=0.1")
    if "," in spec:
        return name, Param(name, choices=tuple(_scalar(v) for v in spec.split(",")))
    parts = spec.split(":")
    if len(parts) == 1:
        return name, _scalar(spec)
    log = len(parts) == 3 and parts[2].strip().lower() == "log"
    if len(parts) > 3 or (len(parts) == 3 and not log):
        raise LstmkitError(f"--param {text!r}: a range is LOW:HIGH or LOW:HIGH:log")
    return name, _range(name, _scalar(parts[0]), _scalar(parts[1]), log)


def _range(name: str, low: Any, high: Any, log: bool) -> Param:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise LstmkitError(f"{name}'s range ends must be numbers, got {low!r} and {high!r}")
    whole = isinstance(low, int) and isinstance(high, int)
    return Param(name, float(low), float(high), whole=whole, log=log)


def read_space_file(path: str | Path) -> dict[str, Param | Any]:
    """A YAML or JSON search-space file (module doc) as name -> Param or fixed value."""
    import yaml  # YAML is a superset of JSON: one reader for both

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LstmkitError(f"cannot read --space {path}: {error.strerror}") from None
    try:
        document = yaml.safe_load(text) if path.suffix.lower() != ".json" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise LstmkitError(f"--space {path} is not valid YAML/JSON: {error}") from None
    if not isinstance(document, dict) or not document:
        raise LstmkitError(f"--space {path} must map option names to ranges, choices or "
                           "values (see lstmkit tune --help)")
    space: dict[str, Param | Any] = {}
    for name, spec in document.items():
        name = str(name).replace("-", "_")
        if isinstance(spec, list) and len(spec) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
            space[name] = _range(name, spec[0], spec[1], False)
        elif isinstance(spec, dict) and "choices" in spec:
            space[name] = Param(name, choices=tuple(spec["choices"]))
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec):
            space[name] = _range(name, spec["low"], spec["high"], bool(spec.get("log", False)))
        elif isinstance(spec, (list, dict)):
            raise LstmkitError(f"--space {path}: {name} must be [LOW, HIGH], {{low, high, log}}, "
                               f"{{choices: [...]}} or one value, got {spec!r}")
        else:
            space[name] = spec
    return space


def resolve_space(defaults: dict[str, Param], given: dict[str, Param | Any],
                  allowed: set[str]) -> tuple[dict[str, Param], dict[str, Any]]:
    """(searched options, fixed options): the task's ``defaults`` with the user's ``given``
    ranges, choices and fixed values in their place. Refuses options the task cannot vary
    and a search with nothing left to search."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise LstmkitError(f"cannot tune {unknown}: this task's options are "
                           f"{', '.join(sorted(allowed))}")
    searched = {n: p for n, p in defaults.items() if n not in given}
    fixed: dict[str, Any] = {}
    for name, spec in given.items():
        if isinstance(spec, Param):
            searched[name] = spec
        else:
            fixed[name] = spec
    if not searched:
        raise LstmkitError("the search space is empty: every option is fixed; give at least "
                           "one range or choice (--param NAME=LOW:HIGH)")
    return searched, fixed
