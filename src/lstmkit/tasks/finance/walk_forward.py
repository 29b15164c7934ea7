"""The walk-forward plan and what each training window fits, with nothing from later days.

Days are rows of the price panel (trading days). A forecast made at the close of
origin day t covers days t+1..t+h, so a training origin s has its target known at the
close of day s+h. A test block starting at origin t0 trains on origins

    s <= t0 - h - purge                    (targets known ``purge`` days before t0)

the last ``train_days`` of them (all, when 0); the last ``validation_days`` choose the
epoch and are kept apart from the fitted origins by h days too. The block tests origins
t0 .. t0 + refit_every - 1. Feature scalers and target scales come from the training
window's days alone (:class:`WindowScaler`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from lstmkit.errors import LstmkitError

CLIP = 8.0  # standardised features beyond 8 std (crash days) are clipped: rare, and huge
MIN_FIT_ORIGINS = 100  # fewer training origins than this is too little history


@dataclass
class Fold:
    """One refit: the origins it fits, validates on, and tests."""

    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def first_origin(features: np.ndarray, window: int) -> int:
    """The first day whose whole input window has every feature defined."""
    defined = np.isfinite(features).all(axis=(1, 2))  # (T,)
    if not defined.any():
        raise LstmkitError("no day has every feature defined; the series is too short")
    first_defined = int(np.argmax(defined))
    if not defined[first_defined:].all():
        raise LstmkitError("a feature is undefined in the middle of the series; check the "
                           "prices for gaps")
    return first_defined + window - 1


def training_origins(first: int, last: int, train_days: int, validation_days: int,
                     horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitted, validation) origins of a training window ending at origin ``last``; both
    empty when the window has no room (the callers say so)."""
    start = first if train_days == 0 else max(first, last - train_days + 1)
    validation = np.arange(max(start, last - validation_days + 1), last + 1)
    fit = np.arange(start, (int(validation[0]) if len(validation) else start) - horizon + 1)
    return fit, validation


def plan_folds(dates: np.ndarray, first: int, horizon: int, purge: int, train_days: int,
               validation_days: int, refit_every: int, test_start: str | None) -> list[Fold]:
    """The walk-forward's folds over the panel's days (module doc)."""
    last_labelled = len(dates) - 1 - horizon
    needed = (train_days or 1000) + horizon + purge
    if test_start is None:
        t0 = first + needed - 1
    else:
        t0 = int(np.searchsorted(dates, np.datetime64(test_start)))
    if t0 > last_labelled:
        raise LstmkitError(
            f"no test days: the test would start at origin {t0} but the last origin whose "
            f"{horizon}-day target is known is {last_labelled}; give more history, an "
            "earlier --test-start, or a shorter --horizon / --train-days")
    folds = []
    for start in range(t0, last_labelled + 1, refit_every):
        fit, validation = training_origins(first, start - horizon - purge, train_days,
                                           validation_days, horizon)
        if len(fit) < MIN_FIT_ORIGINS:
            raise LstmkitError(
                f"too little history for the first training window: {max(len(fit), 0)} "
                f"training days before the test starts at {str(dates[t0])[:10]} (needed "
                f"{MIN_FIT_ORIGINS} besides {validation_days} validation days and "
                f"{horizon + purge} purged); pass a later --test-start or fewer "
                "--validation-days")
        folds.append(Fold(fit, validation, np.arange(start, min(start + refit_every,
                                                                last_labelled + 1))))
    return folds


class WindowScaler:
    """Feature standardisation and the target's scale, fitted on one training window."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, target_scale: float) -> None:
        self.mean, self.std, self.target_scale = mean, std, target_scale

    @classmethod
    def fit(cls, features: np.ndarray, targets: np.ndarray, origins: np.ndarray, window: int,
            kind: str) -> WindowScaler:
        """From the days the origins' windows cover and the origins' targets."""
        days = features[int(origins[0]) - window + 1: int(origins[-1]) + 1]  # (D, A, F)
        flat = days.reshape(-1, days.shape[-1])
        std = flat.std(axis=0)
        fitted = targets[origins]
        if kind == "return":
            scale = float(fitted.std())
        elif kind == "volatility":
            scale = float(fitted.mean())
        else:
            scale = 1.0
        return cls(flat.mean(axis=0), np.where(std > 0, std, 1.0), scale if scale > 0 else 1.0)

    def prior(self, kind: str, variance: np.ndarray) -> torch.Tensor:
        """The network's prior (T, A) in its output's units (see network.py): the log of
        a baseline ``variance`` forecast for volatility, else 0."""
        if kind != "volatility":
            return torch.zeros(variance.shape)
        scaled = np.nan_to_num(variance / self.target_scale, nan=1.0)
        return torch.from_numpy(np.log(np.maximum(scaled, 1e-6)).astype(np.float32))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardised, clipped features (T, A, F) as float32; undefined values 0."""
        scaled = np.clip((features - self.mean) / self.std, -CLIP, CLIP)
        return np.nan_to_num(scaled, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "target_scale": self.target_scale}

    @classmethod
    def from_dict(cls, state: dict) -> WindowScaler:
        return cls(np.asarray(state["mean"]), np.asarray(state["std"]),
                   float(state["target_scale"]))


def input_windows(scaled: torch.Tensor, origins: torch.Tensor, assets: torch.Tensor,
                  window: int) -> torch.Tensor:
    """The ``window`` days up to each origin, of its asset: (N, L, F) from (T, A, F)."""
    days = origins.unsqueeze(1) + torch.arange(1 - window, 1)  # (N, L)
    return scaled[days, assets.unsqueeze(1)]  # (N, L, F)


class OriginWindows(Dataset):
    """(input window, prior, scaled target) of every (origin, asset) pair of some origins
    (``prior`` and ``targets`` are (T, A)); batches are gathered by tensor indexing rather
    than item by item."""

    def __init__(self, scaled: torch.Tensor, prior: torch.Tensor, targets: torch.Tensor,
                 origins: np.ndarray, window: int) -> None:
        assets = scaled.shape[1]
        self.scaled, self.prior, self.targets, self.window = scaled, prior, targets, window
        self.origins = torch.as_tensor(np.repeat(origins, assets))
        self.assets = torch.arange(assets).repeat(len(origins))

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([index]))

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        rows = torch.as_tensor(indices)
        origins, assets = self.origins[rows], self.assets[rows]
        return (input_windows(self.scaled, origins, assets, self.window),
                self.prior[origins, assets], self.targets[origins, assets])
