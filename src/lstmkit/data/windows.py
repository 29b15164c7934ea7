"""Windowing validated series into tensors for an LSTM encoder.

A sample starts at position ``s`` of a series: its input is the ``window`` (L) steps
``s .. s+L-1`` and its target the ``horizon`` (H) steps ``s+L .. s+L+H-1``.

Per input step the features are, in this order (``ForecastData.feature_names``)::

    [target (per-window normalised), past covariates, future covariates, calendar]

and per horizon step the features known in advance (``future_feature_names``)::

    [future covariates, calendar]

Trailing windows: with ``mask_trailing=True`` (the default) windows whose target runs
past the end of the data are kept as long as at least one target step is observed;
the missing steps are zero in ``y`` and False in ``y_mask``, so the most recent data
takes part in training and a masked loss ignores the rest. For those steps the
calendar is exact (it comes from the time grid); future covariates come from the
series' known future rows where given and are zero otherwise. Only the horizon
features at masked steps can be zero, so a causal decoder's observed outputs never
see them.

Per-window normalisation (options ``window_center``, ``window_scale``) uses statistics
of the input window only and applies them to the input target and to ``y``; the
per-sample ``center`` and ``scale`` invert predictions (:meth:`ForecastWindows.invert`).
Covariates are not normalised per window: scale them per series with
:class:`lstmkit.data.scaling.SeriesScaler` before windowing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lstmkit.data.calendar import calendar_features
from lstmkit.data.forecast_data import ForecastData, TimeSeries
from lstmkit.data.scaling import (
    WindowCenter,
    WindowScale,
    check_window_normalization,
    invert_window_normalization,
    normalize_windows,
    window_statistics,
)
from lstmkit.data.time_axis import format_time, future_times
from lstmkit.errors import LstmkitError


@dataclass(frozen=True)
class ForecastWindows:
    """Training or evaluation samples (N windows over all series).

    x          (N, L, F)  float32 input features per step
    future     (N, H, Ff) float32 features known for the horizon steps
    y          (N, H)     float32 target, per-window normalised; 0 where masked
    y_mask     (N, H)     bool    True where the target is observed
    series_id  (N,)       int64   static id of each sample's series
    center     (N,)       float32 per-window center (0 without normalisation)
    scale      (N,)       float32 per-window scale (1 without normalisation)
    origin     (N,)       int64   position in its series of the first target step
    """

    x: torch.Tensor
    future: torch.Tensor
    y: torch.Tensor
    y_mask: torch.Tensor
    series_id: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor
    origin: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """(x, future, y, y_mask, series_id, center, scale) for a TensorDataset."""
        return self.x, self.future, self.y, self.y_mask, self.series_id, self.center, self.scale

    def invert(self, predictions: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Undo the per-window normalisation of predictions (N, H) or (N, H, Q)."""
        return _invert(predictions, self.center, self.scale)


@dataclass(frozen=True)
class PredictionInput:
    """The last input window of each series, for forecasting past its end (N = S).

    x          (S, L, F)  float32
    future     (S, H, Ff) float32
    series_id  (S,)       int64
    center     (S,)       float32
    scale      (S,)       float32
    times      S indexes of the H forecast times (timestamps, or step numbers)
    """

    x: torch.Tensor
    future: torch.Tensor
    series_id: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor
    times: tuple[pd.Index, ...]

    def invert(self, predictions: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Undo the per-window normalisation of predictions (S, H) or (S, H, Q)."""
        return _invert(predictions, self.center, self.scale)


def _invert(
    predictions: torch.Tensor | np.ndarray, center: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor | np.ndarray:
    if isinstance(predictions, torch.Tensor):
        return invert_window_normalization(
            predictions, center.to(predictions), scale.to(predictions)
        )
    return invert_window_normalization(
        np.asarray(predictions), center.double().numpy(), scale.double().numpy()
    )


def check_window_horizon(window: int, horizon: int) -> None:
    """Raise a clear error unless ``window`` and ``horizon`` are positive integers."""
    for name, value in (("window", window), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise LstmkitError(
                f"--{name} must be a positive whole number of steps, got {value!r}; pass "
                f"e.g. --{name} {24 if name == 'window' else 12}."
            )


def check_lengths(data: ForecastData, window: int, horizon: int) -> None:
    """Raise if any series is shorter than ``window + horizon`` (the message says what to lower)."""
    check_window_horizon(window, horizon)
    need = window + horizon
    short = [s for s in data.series if len(s) < need]
    if short:
        shortest = min(len(s) for s in short)
        listed = ", ".join(f"'{s.name}' has {len(s)}" for s in short[:5])
        raise LstmkitError(
            f"{len(short)} series are shorter than window + horizon = {window} + {horizon} = "
            f"{need} points ({listed}); lower --window to at most {max(shortest - horizon, 0)} "
            f"or --horizon to at most {max(shortest - window, 0)}, or drop the short series."
        )


def _step_features(
    data: ForecastData, series: TimeSeries, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-step arrays over the series extended by ``horizon`` steps past its end.

    Returns target (T+H,) with NaN past the end, past covariates (T+H, Fp),
    future covariates (T+H, Ff) and calendar (T+H, Fc).
    """
    times = series.time.append(future_times(series.time, data.freq, horizon))  # (T+H,)
    target = np.concatenate([series.target, np.full(horizon, np.nan)])
    past = np.concatenate([series.past_covariates, np.zeros((horizon, len(data.past_covariates)))])
    future_known = np.zeros((horizon, len(data.future_covariates)))
    given = min(horizon, len(series.future_time))
    if given:
        future_known[:given] = np.nan_to_num(series.future_ahead[:given])
    future = np.concatenate([series.future_covariates, future_known])
    calendar = calendar_features(times, data.calendar)
    return target, past, future, calendar


def make_windows(
    data: ForecastData,
    window: int,
    horizon: int,
    *,
    stride: int = 1,
    mask_trailing: bool = True,
    window_center: WindowCenter = "none",
    window_scale: WindowScale = "none",
) -> ForecastWindows:
    """All samples of all series (see the module doc for layout and masking).

    Args:
        data: validated (and usually per-series scaled) series.
        window: input length L.
        horizon: forecast length H.
        stride: steps between consecutive window starts.
        mask_trailing: keep windows whose target runs past the data, masked.
        window_center: "none", "last" (last input value) or "mean" (input mean).
        window_scale: "none", "std" or "meanabs" (of the input around the center).

    Returns:
        ForecastWindows with N = number of samples over all series.
    """
    check_lengths(data, window, horizon)
    check_window_normalization(window_center, window_scale)
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise LstmkitError(f"stride must be a positive integer, got {stride!r}.")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "future", "y", "id", "origin")}
    steps_l, steps_h = np.arange(window), np.arange(horizon)
    for series in data.series:
        target, past, future, calendar = _step_features(data, series, horizon)
        length = len(series)
        # The last start must leave one observed target step (masked) or all H (unmasked).
        last_start = length - window - (1 if mask_trailing else horizon)
        starts = np.arange(0, last_start + 1, stride)  # (n,)
        input_index = starts[:, None] + steps_l  # (n, L)
        target_index = starts[:, None] + window + steps_h  # (n, H)
        parts["x"].append(np.concatenate(
            [target[input_index][..., None], past[input_index], future[input_index],
             calendar[input_index]],
            axis=-1,
        ))  # (n, L, F); target still raw here, normalised below
        parts["future"].append(
            np.concatenate([future[target_index], calendar[target_index]], axis=-1)
        )  # (n, H, Ff + Fc)
        parts["y"].append(target[target_index])  # (n, H), NaN past the end
        parts["id"].append(np.full(len(starts), series.series_id))
        parts["origin"].append(starts + window)
    x = np.concatenate(parts["x"])  # (N, L, F)
    y = np.concatenate(parts["y"])  # (N, H)
    center, scale = window_statistics(x[:, :, 0], window_center, window_scale)  # (N,), (N,)
    x[:, :, 0] = normalize_windows(x[:, :, 0], center, scale)
    y_mask = np.isfinite(y)
    y = np.where(y_mask, normalize_windows(y, center, scale), 0.0)
    return ForecastWindows(
        x=torch.from_numpy(x).float(),
        future=torch.from_numpy(np.concatenate(parts["future"])).float(),
        y=torch.from_numpy(y).float(),
        y_mask=torch.from_numpy(y_mask),
        series_id=torch.from_numpy(np.concatenate(parts["id"])).long(),
        center=torch.from_numpy(center).float(),
        scale=torch.from_numpy(scale).float(),
        origin=torch.from_numpy(np.concatenate(parts["origin"])).long(),
    )


def make_prediction_input(
    data: ForecastData,
    window: int,
    horizon: int,
    *,
    window_center: WindowCenter = "none",
    window_scale: WindowScale = "none",
) -> PredictionInput:
    """The input window at the end of each series and its horizon's known features.

    Future covariates must be given for all ``horizon`` steps after each series'
    end (rows after the last target value, target empty); otherwise this raises.
    """
    check_window_horizon(window, horizon)
    check_window_normalization(window_center, window_scale)
    short = [s for s in data.series if len(s) < window]
    if short:
        raise LstmkitError(
            f"series '{short[0].name}' has {len(short[0])} points, fewer than --window "
            f"{window}; lower --window to at most {min(len(s) for s in short)}."
        )
    xs, futures, times = [], [], []
    for series in data.series:
        if data.future_covariates:
            _check_future_known(data, series, horizon)
        target, past, future, calendar = _step_features(data, series, horizon)
        length = len(series)
        inputs = slice(length - window, length)
        xs.append(np.concatenate(
            [target[inputs, None], past[inputs], future[inputs], calendar[inputs]], axis=-1
        ))  # (L, F)
        futures.append(np.concatenate([future[length:], calendar[length:]], axis=-1))  # (H, Ff)
        times.append(future_times(series.time, data.freq, horizon))
    x = np.stack(xs)  # (S, L, F)
    center, scale = window_statistics(x[:, :, 0], window_center, window_scale)
    x[:, :, 0] = normalize_windows(x[:, :, 0], center, scale)
    return PredictionInput(
        x=torch.from_numpy(x).float(),
        future=torch.from_numpy(np.stack(futures)).float(),  # (S, H, Ff)
        series_id=torch.tensor([s.series_id for s in data.series], dtype=torch.long),
        center=torch.from_numpy(center).float(),
        scale=torch.from_numpy(scale).float(),
        times=tuple(times),
    )


def _check_future_known(data: ForecastData, series: TimeSeries, horizon: int) -> None:
    wanted = future_times(series.time, data.freq, horizon)
    given = series.future_ahead[:horizon]
    complete = len(series.future_time) >= horizon and not np.isnan(given).any()
    if complete:
        return
    if len(series.future_time) < horizon:
        first_absent = wanted[len(series.future_time)]
        problem = (
            f"has future rows for {len(series.future_time)} of the {horizon} steps (none from "
            f"{format_time(first_absent)})"
        )
    else:
        step, column = np.argwhere(np.isnan(given))[0]
        problem = (
            f"has no value of '{data.future_covariates[column]}' at {format_time(wanted[step])}"
        )
    raise LstmkitError(
        f"future covariates {', '.join(data.future_covariates)} must be known for the "
        f"{horizon} forecast steps {format_time(wanted[0])}..{format_time(wanted[-1])}, "
        f"but series '{series.name}' {problem}. Add rows for those timestamps with the "
        "target empty and the future covariates filled, or pass a shorter --horizon."
    )
