"""Scaling: per-series scalers and per-window normalisation, both invertible.

Two levels, used alone or together:

* :class:`SeriesScaler` maps each column (target and covariates) of each series to
  ``(value - center) / scale``, with statistics from the training part only, so no
  information from the evaluation period leaks in. Its state is a JSON-able dict
  (saved in the run directory; never pickle).
* Per-window normalisation (:func:`window_statistics`) rescales the target of each
  window by statistics of that window's *input* steps only; the same center and
  scale apply to the window's target steps and are inverted on the predictions. It
  lets one global model serve series of very different levels and trends.

Methods of :class:`SeriesScaler`:
    standard  center = mean, scale = standard deviation
    robust    center = median, scale = interquartile range (outliers barely move it)
    meanabs   center = 0, scale = mean absolute value (keeps the sign and zero)
    none      center = 0, scale = 1
A scale of (almost) zero, as for a constant column, is replaced by 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from lstmkit.data.forecast_data import ForecastData
from lstmkit.data.splits import Cutoff, cutoff_position
from lstmkit.errors import LstmkitError

ScalerMethod = Literal["standard", "robust", "meanabs", "none"]
SCALER_METHODS = ("standard", "robust", "meanabs", "none")
WindowCenter = Literal["none", "last", "mean"]
WindowScale = Literal["none", "std", "meanabs"]
WINDOW_CENTERS = ("none", "last", "mean")
WINDOW_SCALES = ("none", "std", "meanabs")
_TINY = 1e-8  # below this a scale is treated as zero


def _statistics(values: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Center and scale per column of ``values`` (T, C)."""
    if method == "standard":
        center, scale = values.mean(axis=0), values.std(axis=0)
    elif method == "robust":
        q25, center, q75 = np.percentile(values, [25, 50, 75], axis=0)
        scale = q75 - q25
    elif method == "meanabs":
        center, scale = np.zeros(values.shape[1]), np.abs(values).mean(axis=0)
    else:
        center, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
    return center, np.where(scale > _TINY, scale, 1.0)


class SeriesScaler:
    """Per-series, per-column affine scaler fitted on the training part of each series."""

    def __init__(self, method: ScalerMethod = "standard") -> None:
        if method not in SCALER_METHODS:
            raise LstmkitError(
                f"--scaler {method!r} is unknown; use one of {', '.join(SCALER_METHODS)}."
            )
        self.method = method
        self.columns: list[str] = []
        self.series_names: list[str] = []
        self.center = np.zeros((0, 0))  # (S, C), C = 1 + Fp + Ff, target first
        self.scale = np.ones((0, 0))  # (S, C)

    @property
    def fitted(self) -> bool:
        return bool(self.series_names)

    def fit(self, data: ForecastData, train_end: Cutoff | None = None) -> SeriesScaler:
        """Fit on each series up to ``train_end`` (see :mod:`lstmkit.data.splits`)."""
        centers, scales = [], []
        for s in data.series:
            stop = cutoff_position(s, train_end)
            values = np.column_stack(
                [s.target, s.past_covariates, s.future_covariates]
            )[:stop]  # (stop, C)
            center, scale = _statistics(values, self.method)
            centers.append(center)
            scales.append(scale)
        self.columns = [data.target, *data.past_covariates, *data.future_covariates]
        self.series_names = data.series_names
        self.center, self.scale = np.stack(centers), np.stack(scales)  # (S, C)
        return self

    def _check(self, data: ForecastData) -> None:
        if not self.fitted:
            raise LstmkitError("the scaler is not fitted; call fit() or load its state first.")
        columns = [data.target, *data.past_covariates, *data.future_covariates]
        if columns != self.columns or data.series_names != self.series_names:
            raise LstmkitError(
                f"the scaler was fitted on columns {self.columns} and series "
                f"{self.series_names[:5]}, but the data has columns {columns} and series "
                f"{data.series_names[:5]}; load data with the same columns and series."
            )

    def _apply(self, data: ForecastData, inverse: bool) -> ForecastData:
        self._check(data)
        n_past = len(data.past_covariates)
        # Column blocks of the (S, C) tables: target first, then past, then future.
        target, past, future = slice(0, 1), slice(1, 1 + n_past), slice(1 + n_past, None)
        scaled = []
        for s in data.series:
            center, scale = self.center[s.series_id], self.scale[s.series_id]  # (C,)

            def affine(values: np.ndarray, block: slice, center=center, scale=scale) -> np.ndarray:
                c, k = center[block], scale[block]
                return values * k + c if inverse else (values - c) / k

            scaled.append(
                dataclasses.replace(
                    s,
                    target=affine(s.target[:, None], target)[:, 0],  # (T, 1) -> (T,)
                    past_covariates=affine(s.past_covariates, past),
                    future_covariates=affine(s.future_covariates, future),
                    future_ahead=affine(s.future_ahead, future)
                    if s.future_ahead.size else s.future_ahead,
                )
            )
        return dataclasses.replace(data, series=tuple(scaled))

    def transform(self, data: ForecastData) -> ForecastData:
        """Scaled copy of ``data`` (targets and covariates; calendar needs no scaling)."""
        return self._apply(data, inverse=False)

    def inverse_transform(self, data: ForecastData) -> ForecastData:
        """Undo :meth:`transform`."""
        return self._apply(data, inverse=True)

    def inverse_target(self, values: np.ndarray, series_id: np.ndarray | int) -> np.ndarray:
        """Target values back to the data's units.

        ``values`` is (N, ...) with one series id per row in ``series_id`` (N,), or any
        shape with a single int id.
        """
        values = np.asarray(values, dtype="float64")
        ids = np.asarray(series_id)
        center, scale = self.center[ids, 0], self.scale[ids, 0]  # (N,) or ()
        extra = (1,) * (values.ndim - ids.ndim)
        return values * scale.reshape(scale.shape + extra) + center.reshape(center.shape + extra)

    def transform_target(self, values: np.ndarray, series_id: np.ndarray | int) -> np.ndarray:
        """Target values to the scaled units (inverse of :meth:`inverse_target`)."""
        values = np.asarray(values, dtype="float64")
        ids = np.asarray(series_id)
        center, scale = self.center[ids, 0], self.scale[ids, 0]
        extra = (1,) * (values.ndim - ids.ndim)
        return (values - center.reshape(center.shape + extra)) / scale.reshape(
            scale.shape + extra
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: method, column and series names, center and scale tables."""
        return {
            "kind": "SeriesScaler",
            "method": self.method,
            "columns": list(self.columns),
            "series": list(self.series_names),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> SeriesScaler:
        """Rebuild a scaler from :meth:`to_dict` output."""
        try:
            scaler = cls(state["method"])
            scaler.columns = [str(c) for c in state["columns"]]
            scaler.series_names = [str(s) for s in state["series"]]
            scaler.center = np.asarray(state["center"], dtype="float64").reshape(
                len(scaler.series_names), len(scaler.columns)
            )  # (S, C)
            scaler.scale = np.asarray(state["scale"], dtype="float64").reshape(
                scaler.center.shape
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LstmkitError(
                f"scaler state is malformed ({exc!r}); it should come from "
                "SeriesScaler.to_dict(). Re-save the model's run directory."
            ) from None
        return scaler


def check_window_normalization(center: str, scale: str) -> None:
    """Raise a clear error for an unknown per-window normalisation option."""
    if center not in WINDOW_CENTERS:
        raise LstmkitError(
            f"--window-center {center!r} is unknown; use one of {', '.join(WINDOW_CENTERS)}."
        )
    if scale not in WINDOW_SCALES:
        raise LstmkitError(
            f"--window-scale {scale!r} is unknown; use one of {', '.join(WINDOW_SCALES)}."
        )


def window_statistics(
    inputs: np.ndarray, center: WindowCenter = "none", scale: WindowScale = "none"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-window center and scale from the input steps ``inputs`` (N, L) only.

    The scale is measured around the chosen center (std is unaffected by it;
    ``meanabs`` is the mean distance from it). Returns (center (N,), scale (N,)).
    """
    check_window_normalization(center, scale)
    if center == "last":
        shift = inputs[:, -1].copy()  # a view would change when the caller normalises in place
    elif center == "mean":
        shift = inputs.mean(axis=1)
    else:
        shift = np.zeros(len(inputs))
    if scale == "std":
        spread = inputs.std(axis=1)
    elif scale == "meanabs":
        spread = np.abs(inputs - shift[:, None]).mean(axis=1)
    else:
        spread = np.ones(len(inputs))
    return shift, np.where(spread > _TINY, spread, 1.0)


def normalize_windows(values: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(values - center) / scale`` per window: values (N, ...), center and scale (N,)."""
    extra = (1,) * (np.ndim(values) - 1)
    return (values - center.reshape(-1, *extra)) / scale.reshape(-1, *extra)


def invert_window_normalization(
    values: np.ndarray, center: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Undo :func:`normalize_windows`: values (N, ...) -> values * scale + center."""
    extra = (1,) * (np.ndim(values) - 1)
    return values * scale.reshape(-1, *extra) + center.reshape(-1, *extra)
