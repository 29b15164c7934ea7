"""A financial model's config: what it forecasts, its network and training, and how the
walk-forward evaluation refits and trades; round-trips through JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lstmkit.data.market_features import FEATURES, TARGETS
from lstmkit.errors import LstmkitError
from lstmkit.tasks.lifecycle import JsonConfig, check_lstm_variants, check_whole
from lstmkit.train import TrainConfig

TASK = "finance"
STRATEGIES = ("sign", "long_short")


def _default_training() -> TrainConfig:
    return TrainConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, patience=5,
                       grad_clip=1.0)


@dataclass
class FinanceConfig(JsonConfig):
    """Everything that defines a financial model and its walk-forward evaluation.

    Data: the columns of the closing price, the date and the asset name (``close``,
    ``time``, ``asset_column``; found by name when None) and the dates' ``time_format``
    (see lstmkit.data.prices).

    Forecast: ``target`` ("return", "direction", "volatility", "cross_section"; see
    lstmkit.data.market_features) over ``horizon`` trading days, from the last
    ``window`` days of ``features`` (None: every feature the prices allow). One global
    model serves every asset.

    Network: an lstmkit LSTM of ``num_layers`` x ``hidden_size`` (variants in ``lstm``)
    and a linear head on its last state; ``dropout`` between layers and before the head.

    Training: the shared loop (``train``); the last ``validation_days`` origins of a
    training window choose the epoch (early stopping). A walk-forward refit starts from
    the previous model and trains ``refit_epochs``.

    The defaults (a small, strongly regularised network, short warm-started refits)
    were chosen by the QLIKE of volatility forecasts on S&P 500 and NASDAQ 2005-2010, a
    period the README's benchmark (2011-2018) does not score.

    Walk-forward: training windows of the last ``train_days`` origins (0: all history),
    refitted every ``refit_every`` trading days, ``purge`` days (default: the horizon)
    between the last training target and the first test origin, testing from
    ``test_start`` (a date; default: once the first full training window is there).
    Every scaler is fitted on the training window alone.

    Trading: ``strategy`` "sign" (each asset long or short by the forecast's sign) or
    "long_short" (long the ``top_k`` assets with the highest forecasts, short the
    ``top_k`` lowest), rebalanced daily, paying ``cost_bps`` basis points per unit of
    turnover.
    """

    close: str | None = None
    time: str | None = None
    asset_column: str | None = None
    time_format: str | None = None
    target: str = "return"
    horizon: int = 1
    window: int = 60
    features: list[str] | None = None
    hidden_size: int = 8
    num_layers: int = 1
    dropout: float = 0.3
    lstm: dict[str, Any] = field(default_factory=dict)
    validation_days: int = 250
    refit_epochs: int = 2
    train_days: int = 1000
    refit_every: int = 21
    purge: int | None = None
    test_start: str | None = None
    strategy: str = "sign"
    top_k: int = 1
    cost_bps: float = 5.0
    train: TrainConfig = field(default_factory=_default_training)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = TrainConfig(**self.train)
        self.validate()

    @property
    def purge_days(self) -> int:
        return self.horizon if self.purge is None else self.purge

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first option that is out of range."""
        if self.target not in TARGETS:
            raise LstmkitError(f"unknown target {self.target!r}; choose one of "
                               f"{', '.join(TARGETS)} (--target)")
        if self.strategy not in STRATEGIES:
            raise LstmkitError(f"unknown strategy {self.strategy!r}; choose one of "
                               f"{', '.join(STRATEGIES)} (--strategy)")
        for name in ("horizon", "window", "hidden_size", "num_layers", "validation_days",
                     "refit_epochs", "refit_every", "top_k"):
            check_whole(name, getattr(self, name), 1)
        check_whole("train_days", self.train_days, 0)
        if self.purge is not None:
            check_whole("purge", self.purge, 0)
        if self.train_days and self.train_days <= self.validation_days:
            raise LstmkitError(f"--train-days {self.train_days} must exceed --validation-days "
                               f"{self.validation_days} (the validation days are the end of "
                               "each training window), or be 0 for all history")
        if not 0 <= self.dropout < 1:
            raise LstmkitError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if not (isinstance(self.cost_bps, (int, float)) and math.isfinite(self.cost_bps)
                and self.cost_bps >= 0):
            raise LstmkitError(f"--cost-bps must be 0 or more basis points per unit of "
                               f"turnover, got {self.cost_bps!r}")
        if self.features is not None:
            unknown = [name for name in self.features if name not in FEATURES]
            if unknown or not self.features:
                raise LstmkitError(f"unknown feature(s) {unknown}; choose from "
                                   f"{', '.join(FEATURES)} (--features)")
        check_lstm_variants(self.lstm)
        self.train.validate()

