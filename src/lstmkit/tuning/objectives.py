"""What a trial is for each task: the options it may vary, the default search space, the
fit on the training part, and the validation score it returns (lower is better).

    forecast   the last ``holdout`` points of each series (default: the horizon) are the
               test part, never seen while tuning; a trial trains on the rest up to a
               cutoff and scores the mean MASE of the forecasts from ``VALIDATION_WINDOWS``
               cutoffs half a horizon apart, the last ending where the test part begins
               (one window where the series is too short for more). The best
               configuration is then trained on everything but the test part and scored
               on it once; trials write no run directory of their own.
    classify   a trial trains on the table less its stratified validation split (or on
               --val-data) and returns the best epoch's validation loss; a separate test
               table is never read.
    lm         a trial trains on the text's training part and returns the best epoch's
               validation loss (cross-entropy per token); the test part at the corpus's
               end is scored by every fit but never used to choose.

classify and lm report each epoch's validation loss to the pruner; a forecaster's
steps have no validation, so its trials run whole (they take seconds).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError
from lstmkit.tuning.space import Param

VALIDATION_WINDOWS = 2  # one window of one series is a noisy judge: airline's vary 2x


def with_values(config: Any, values: dict[str, Any]) -> Any:
    """``config`` with ``values`` put in: its own fields, or its ``train`` config's; the
    config's own checks run on the result."""
    own = {k: v for k, v in values.items() if k != "train" and hasattr(config, k)}
    trained = {k: v for k, v in values.items() if k not in own}
    if trained:
        own["train"] = dataclasses.replace(config.train, **trained)
    return dataclasses.replace(config, **own)


def option_names(config: Any, data_options: tuple[str, ...]) -> set[str]:
    """The options a study may vary: the config's fields (and its train config's), less
    those that describe the data."""
    names = {f.name for f in dataclasses.fields(config)} - set(data_options) - {"train",
                                                                              "progress"}
    if hasattr(config, "train"):
        names |= {f.name for f in dataclasses.fields(config.train)} - {"progress", "device"}
    return names


class TaskObjective:
    """A task's trials (see the module doc)."""

    task: str
    metric: str
    prunable: bool
    data_options: tuple[str, ...] = ()

    def __init__(self, config: Any, data: Any, options: dict[str, Any]) -> None:
        self.config, self.data, self.options = config, data, options

    def defaults(self) -> dict[str, Param]:
        raise NotImplementedError

    def allowed(self) -> set[str]:
        return option_names(self.config, self.data_options)

    def untuned(self, names: list[str]) -> dict[str, Any]:
        """The base config's values of ``names`` (the untuned default trial)."""
        train = getattr(self.config, "train", None)
        return {n: getattr(self.config, n) if hasattr(self.config, n) else getattr(train, n)
                for n in names}

    def configure(self, values: dict[str, Any]) -> Any:
        return with_values(self.config, values)

    def trial(self, values: dict[str, Any], run_dir: Path) -> float:
        """Fit with ``values`` into ``run_dir``; the validation score."""
        raise NotImplementedError

    def finish(self, values: dict[str, Any], trial_dir: Path, final_dir: Path
               ) -> tuple[Path, str]:
        """The best configuration's run directory (the best trial's own, or a new one at
        ``final_dir``) and a line saying what it is."""
        return trial_dir, f"the best trial's own run ({trial_dir.name})"

    def chosen_on(self) -> str:
        raise NotImplementedError


class ForecastObjective(TaskObjective):
    task, metric, prunable = "forecast", "validation MASE", False
    data_options = ("target", "time", "time_format", "series_id", "layout", "past_covariates",
                    "future_covariates", "calendar", "missing", "freq", "resample",
                    "quantiles", "season")

    def __init__(self, config: Any, data: Any, options: dict[str, Any]) -> None:
        from lstmkit.data.splits import cut_data

        super().__init__(dataclasses.replace(config, progress=False), data, options)
        series = config.load(data)
        self.test = options.get("holdout") or config.horizon
        self.development = cut_data(series, -self.test)[0]
        self.shortest = min(len(s.target) for s in self.development.series)

    def defaults(self) -> dict[str, Param]:
        h = self.config.horizon
        # windows that leave room for some training windows before the validation part
        longest = max(h, min(4 * h, (self.shortest - 2 * h) // 2))
        space = {"hidden_size": Param("hidden_size", 8, 128, whole=True, log=True),
                 "lr": Param("lr", 1e-3, 3e-2, log=True),
                 "steps": Param("steps", 100, 1500, whole=True, log=True),
                 "skip": Param("skip", choices=(True, False)),
                 "window_center": Param("window_center", choices=("none", "last", "mean")),
                 "window_scale": Param("window_scale", choices=("none", "std", "meanabs")),
                 "ensemble": Param("ensemble", choices=(1, 3))}
        if longest > max(2, h // 2):
            space["window"] = Param("window", max(2, h // 2), longest, whole=True)
        return space

    def trial(self, values: dict[str, Any], run_dir: Path) -> float:
        from lstmkit.forecast import backtest

        config = self.configure(values)
        step = max(1, config.horizon // 2)
        room = self.shortest - config.horizon - config.window - config.horizon
        windows = VALIDATION_WINDOWS if room >= (VALIDATION_WINDOWS - 1) * step else 1
        scores = backtest(config, self.development, windows=windows, step=step)
        return float(scores.model["MASE"])

    def finish(self, values: dict[str, Any], trial_dir: Path, final_dir: Path
               ) -> tuple[Path, str]:
        from lstmkit.forecast import Forecaster

        model = Forecaster(self.configure(values)).fit(self.data, final_dir, holdout=self.test)
        mase = model.scores.model["MASE"]
        return final_dir, (f"trained with the best options on everything but the test part "
                           f"(the last {self.test} points), then scored on it once: test MASE "
                           f"{mase:.4g}")

    def chosen_on(self) -> str:
        return (f"validation: forecasts of {self.config.horizon} points from "
                f"{VALIDATION_WINDOWS} cutoffs before the test part (the last {self.test} "
                "points of each series, never seen while tuning)")


class ClassifyObjective(TaskObjective):
    task, metric, prunable = "classify", "validation loss", True
    data_options = ("data", "text_column", "label_column", "value_columns", "id_column",
                    "step_column", "frame_length", "val_fraction", "from_lm")

    def defaults(self) -> dict[str, Param]:
        space = {"hidden_size": Param("hidden_size", 32, 256, whole=True, log=True),
                 "dropout": Param("dropout", 0.0, 0.5),
                 "pooling": Param("pooling", choices=("last", "mean", "max", "attention")),
                 "lr": Param("lr", 3e-4, 1e-2, log=True)}
        if self.config.data == "text":  # sequences of numbers have no embedding
            space["embedding_dim"] = Param("embedding_dim", 32, 256, whole=True, log=True)
        return space

    def trial(self, values: dict[str, Any], run_dir: Path) -> float:
        from lstmkit.classify import Classifier

        report = Classifier(self.configure(values)).fit(self.data, run_dir, **self.options)
        return _finite(report.train.best_val_loss, "classification")

    def chosen_on(self) -> str:
        return ("validation: " + ("--val-data" if self.options.get("val_data") else
                                  f"a stratified {self.config.val_fraction:g} of the table"))


class LanguageModelObjective(TaskObjective):
    task, metric, prunable = "lm", "validation loss", True
    data_options = ("tokenizer", "vocab_size", "min_count", "lowercase", "pattern",
                    "val_fraction", "test_fraction", "shuffle")

    def defaults(self) -> dict[str, Param]:
        return {"hidden_size": Param("hidden_size", 64, 512, whole=True, log=True),
                "num_layers": Param("num_layers", choices=(1, 2, 3)),
                "hidden_dropout": Param("hidden_dropout", 0.0, 0.4),
                "output_dropout": Param("output_dropout", 0.0, 0.4),
                "weight_drop": Param("weight_drop", 0.0, 0.5),
                "lr": Param("lr", 5e-4, 1e-2, log=True)}

    def trial(self, values: dict[str, Any], run_dir: Path) -> float:
        from lstmkit.lm import LanguageModel

        report = LanguageModel(self.configure(values)).fit(self.data, run_dir, **self.options)
        return _finite(report.result.best_val_loss, "language modelling")

    def chosen_on(self) -> str:
        return (f"validation: the {self.config.val_fraction:g} of the text before its test "
                "part; the test part was scored by each fit but not used to choose")


def _finite(value: float | None, task: str) -> float:
    if value is None or not math.isfinite(value):
        raise LstmkitError(f"{task} tuning needs validation data: the fit had none "
                           "(--val-fraction 0?)")
    return float(value)


OBJECTIVES: dict[str, type[TaskObjective]] = {
    "forecast": ForecastObjective, "classify": ClassifyObjective, "lm": LanguageModelObjective}
