"""The shape every task has, written once.

    config dataclass  <-> JSON (dataclasses.asdict / config_from_json)
    fit(data, run_dir, resume=..., overwrite=...)   trains and writes the run directory
    predict / generate / ...                       the task's own answers
    evaluate(...) -> Evaluation                    the model beside the task's baselines
    save(run_dir) / load(run_dir)

A task subclasses :class:`Task` and supplies ``_fit(data, run, started, **options)``
(train; with a run, keep the training checkpoint in ``run.work`` and continue it when
``run.resumed``; a time budget counts from ``started``, so it covers the whole fit),
``_write(directory)`` (the model's files) and ``_read(run)`` (a model from a
:class:`~lstmkit.io.rundir.FinishedRun`). The run-directory rules (lock, resume,
overwrite, manifest, consistent reads) come from :mod:`lstmkit.io.rundir` through
:meth:`Task.fit`, :meth:`Task.save` and :meth:`Task.load` alone.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lstmkit.errors import LstmkitError, option_name
from lstmkit.io.rundir import FinishedRun, Run, load_run, open_run

TaskT = TypeVar("TaskT", bound="Task")
ConfigT = TypeVar("ConfigT")
JsonConfigT = TypeVar("JsonConfigT", bound="JsonConfig")

LSTM_VARIANTS = ("peephole", "layer_norm", "zoneout", "recurrent_dropout", "weight_drop",
                 "forget_bias", "backend")
"""Keyword arguments of lstmkit.nn.LSTM that a task config's ``lstm`` options may set."""


def config_from_json(kind: type[ConfigT], state: Any, where: str = "config.json") -> ConfigT:
    """The config dataclass ``kind`` from its ``dataclasses.asdict``; unknown or missing
    options are reported by name."""
    if not isinstance(state, dict):
        raise LstmkitError(f"{where} does not hold {kind.__name__} options; the file is "
                           "damaged: train again")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(state) - set(fields))
    if unknown:
        raise LstmkitError(f"{where} has unknown {kind.__name__} options {unknown}; it is "
                           "from another lstmkit version or was edited: train again")
    try:
        return kind(**state)
    except TypeError as error:
        raise LstmkitError(f"{where} does not hold valid {kind.__name__} options ({error}); "
                           "train again") from None


class JsonConfig:
    """A task config's JSON round trip (for dataclasses): ``to_json`` / ``from_json``."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls: type[JsonConfigT], state: dict[str, Any]) -> JsonConfigT:
        return config_from_json(cls, state)


def check_whole(name: str, value: object, low: int) -> None:
    """Raise naming the option of config field ``name`` unless ``value`` is a whole number
    of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LstmkitError(f"{option_name(name)} must be a whole number of at least {low}, "
                           f"got {value!r}")


def check_share(name: str, value: object, below: float = 1.0) -> None:
    """Raise naming the option of config field ``name`` unless ``value`` lies in
    [0, ``below``) (a probability, a fraction of the data)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value < below):
        raise LstmkitError(f"{option_name(name)} must lie in [0, {below:g}), got {value!r}")


def check_lstm_variants(options: dict[str, Any]) -> None:
    """Raise naming the options that are not lstmkit.nn.LSTM variants (LSTM_VARIANTS)."""
    unknown = sorted(set(options) - set(LSTM_VARIANTS))
    if unknown:
        raise LstmkitError(f"unknown LSTM variant(s) {unknown}; the LSTM takes "
                           f"{', '.join(LSTM_VARIANTS)}")


@dataclass
class Evaluation:
    """A model's scores beside the task's baselines, on the same data.

    ``rows`` maps each scored forecaster or predictor to its metrics, the model first
    (key ``"model"``); ``labels`` are the names shown for the rows; ``lower_is_better``
    names the metrics where less is better; ``notes`` say how to read the numbers (a
    metric's convention); ``details`` hold the task's further results (per class, per
    series, per window).
    """

    task: str
    data: str
    rows: dict[str, dict[str, float]]
    labels: dict[str, str] = field(default_factory=dict)
    lower_is_better: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, row: str) -> dict[str, float]:
        return self.rows[row]

    @property
    def model(self) -> dict[str, float]:
        return self.rows["model"]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Evaluation:
        return config_from_json(cls, state, "metrics.json")

    def table(self) -> str:
        """A text table: one row per model or baseline, one column per metric."""
        metrics = list(dict.fromkeys(m for row in self.rows.values() for m in row))
        names = {key: self.labels.get(key, key) for key in self.rows}
        width = max(len(name) for name in names.values()) + 2
        columns = [max(len(m), 9) + 2 for m in metrics]
        header = f"{'':<{width}}" + "".join(f"{m:>{w}}" for m, w in zip(metrics, columns))
        lines = [self.data, header, "-" * len(header)]
        for key, row in self.rows.items():
            cells = "".join(f"{row[m]:>{w}.4g}" if m in row else " " * w
                            for m, w in zip(metrics, columns))
            lines.append(f"{names[key]:<{width}}{cells}")
        lines += self.notes
        return "\n".join(lines)


class Task:
    """Base of every task: fit into a run directory, save, load, by one set of rules."""

    task: ClassVar[str]
    """The task's name in config.json and manifest.json."""

    def fit(self, data: Any, run_dir: str | Path | None = None, *, resume: bool = False,
            overwrite: bool = False, **options: Any) -> Any:
        """Train on ``data``; with ``run_dir`` write the run there (see lstmkit.io.rundir):
        ``resume`` continues an interrupted run, ``overwrite`` replaces a finished one once
        the new one has finished. ``options`` are the task's own. Returns ``_fit``'s
        report."""
        started = time.monotonic()
        if run_dir is None:
            if resume:
                raise LstmkitError("resume needs the run directory to continue (--run-dir)")
            return self._fit(data, None, started, **options)
        with open_run(run_dir, self.task, overwrite=overwrite, resume=resume) as run:
            report = self._fit(data, run, started, **options)
            if run.writer:
                self._write(run.work)
        return report

    def save(self, run_dir: str | Path, overwrite: bool = False) -> None:
        """Write the model as a finished run directory (an existing one only with
        ``overwrite``, and only once the new one is complete)."""
        with open_run(run_dir, self.task, overwrite=overwrite, resumable=False) as run:
            if run.writer:
                self._write(run.work)

    @classmethod
    def load(cls: type[TaskT], run_dir: str | Path) -> TaskT:
        """The model in the finished run directory ``run_dir``; every file it reads is
        checked against the run's manifest (JSON and safetensors only, no pickle)."""
        return load_run(run_dir, cls.task, cls._read)

    # what each task supplies

    def _fit(self, data: Any, run: Run | None, started: float, **options: Any) -> Any:
        raise NotImplementedError

    def _write(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def _read(cls: type[TaskT], run: FinishedRun) -> TaskT:
        raise NotImplementedError
