"""A forecaster's config: everything that rebuilds it and its data pipeline, round-tripping
through JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lstmkit.data.scaling import SCALER_METHODS, WINDOW_CENTERS, WINDOW_SCALES
from lstmkit.data.timeseries import ForecastData, load_series
from lstmkit.data.windows import check_window_horizon
from lstmkit.errors import LstmkitError, option_name

TASK = "forecast"
STRATEGIES = ("direct", "recursive")


@dataclass
class ForecastConfig:
    """Everything that rebuilds a forecaster and its data pipeline (saved in config.json)."""

    # data (see lstmkit.data.timeseries.load_series)
    target: str | list[str] | None = None
    time: str | list[str] | None = None
    time_format: str | None = None  # strftime format, for dates pandas cannot infer
    series_id: str | None = None
    layout: str = "long"
    past_covariates: list[str] = field(default_factory=list)
    future_covariates: list[str] = field(default_factory=list)
    calendar: bool | list[str] = False
    missing: str = "interpolate"
    freq: str | None = None
    resample: str | None = None
    # the forecast
    horizon: int = 12
    window: int = 36
    strategy: str = "direct"
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    season: int | None = None  # for MASE and seasonal naive; None: from the frequency
    # scaling
    scaler: str = "standard"
    window_center: str = "last"
    window_scale: str = "std"
    # model
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    skip: bool = True
    series_embedding: int | None = None  # None: 4 when there are several series, else 0
    lstm_options: dict[str, Any] = field(default_factory=dict)  # peephole, layer_norm, ...
    # training
    steps: int = 300
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    ensemble: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_window_horizon(self.window, self.horizon)
        if self.strategy not in STRATEGIES:
            raise LstmkitError(f"--strategy must be one of {', '.join(STRATEGIES)}, "
                               f"got {self.strategy!r}")
        if self.strategy == "recursive" and self.past_covariates:
            raise LstmkitError("the recursive strategy cannot forecast past covariates; use "
                               "--strategy direct or give them as future covariates")
        quantiles = sorted(float(q) for q in self.quantiles)
        if 0.5 not in quantiles or not all(0 < q < 1 for q in quantiles):
            raise LstmkitError(f"--quantiles must lie strictly between 0 and 1 and include the "
                               f"median 0.5 (the point forecast); got {self.quantiles}")
        self.quantiles = quantiles
        for name, value, allowed in (("scaler", self.scaler, SCALER_METHODS),
                                     ("window_center", self.window_center, WINDOW_CENTERS),
                                     ("window_scale", self.window_scale, WINDOW_SCALES)):
            if value not in allowed:
                raise LstmkitError(f"{option_name(name)} must be one of {', '.join(allowed)}"
                                   f", got {value!r}")
        for name in ("hidden_size", "num_layers", "steps", "batch_size", "ensemble"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LstmkitError(f"{option_name(name)} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise LstmkitError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LstmkitError(f"--lr must be positive, got {self.lr}")

    def data_options(self) -> dict[str, Any]:
        return dict(target=self.target, time=self.time, time_format=self.time_format,
                    series_id=self.series_id,
                    layout=self.layout, past_covariates=self.past_covariates,
                    future_covariates=self.future_covariates, calendar=self.calendar,
                    missing=self.missing, freq=self.freq, resample=self.resample)

    def load(self, source: Any) -> ForecastData:
        """A CSV/Parquet path or DataFrame as validated series; ForecastData passes through."""
        if isinstance(source, ForecastData):
            return source
        return load_series(source, **self.data_options())
