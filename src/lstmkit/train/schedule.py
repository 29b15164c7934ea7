"""Learning-rate schedules: a pure function of the step, times a plateau scale.

The learning rate of parameter group k at optimizer step s (counted from 0) is

    lr_k(s) = base_lr_k * factor(s) * plateau_scale

where ``factor`` is the chosen curve after linear warmup. Because ``factor`` depends
only on ``s``, resuming needs nothing but the step; only ``plateau`` carries state.
"""

from __future__ import annotations

import math
from typing import Any

import torch

ONECYCLE_START = 1 / 25  # onecycle starts at base_lr / 25, as torch's OneCycleLR does
ONECYCLE_WARMUP_FRACTION = 0.3  # onecycle's rise when warmup_steps is 0, as OneCycleLR's


class LearningRateSchedule:
    """Sets every parameter group's learning rate before each optimizer step.

    Curves, with ``p`` the fraction of post-warmup steps done (0 to 1):
    ``constant`` 1; ``linear`` 1 - p; ``cosine`` (1 + cos(pi p)) / 2; ``onecycle``
    rises linearly from 1/25 to 1 over the warmup (30% of the run when
    ``warmup_steps`` is 0), then follows the cosine; ``plateau`` 1, scaled down by
    ``plateau_factor`` whenever the monitored loss stalls for ``plateau_patience``
    epochs (torch's ReduceLROnPlateau in mode "min").
    """

    def __init__(
        self,
        name: str,
        base_lrs: list[float],
        total_steps: int,
        warmup_steps: int = 0,
        plateau_factor: float = 0.5,
        plateau_patience: int = 2,
        min_delta: float = 0.0,
    ) -> None:
        self.name = name
        self.base_lrs = list(base_lrs)
        self.total_steps = total_steps
        if name == "onecycle" and warmup_steps == 0:
            warmup_steps = max(1, round(ONECYCLE_WARMUP_FRACTION * total_steps))
        self.warmup_steps = warmup_steps
        self.plateau_factor = plateau_factor
        self.plateau_patience = plateau_patience
        self.min_delta = min_delta
        self.scale = 1.0  # plateau reductions so far
        self.best: float | None = None  # best monitored loss (plateau)
        self.bad_epochs = 0  # epochs since it improved (plateau)

    def factor(self, step: int, time_used: float = 0.0) -> float:
        """Multiplier of the base learning rate at optimizer step ``step`` (from 0);
        ``time_used`` is the fraction of a time budget spent, which moves the curve on
        when the clock runs out before the steps do."""
        if step < self.warmup_steps:
            if self.name == "onecycle":
                return ONECYCLE_START + (1 - ONECYCLE_START) * step / self.warmup_steps
            return (step + 1) / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        p = min(1.0, max((step - self.warmup_steps) / decay_steps, time_used))
        if self.name == "linear":
            return 1.0 - p
        if self.name in ("cosine", "onecycle"):
            return 0.5 * (1.0 + math.cos(math.pi * p))
        return 1.0

    def apply(self, optimizer: torch.optim.Optimizer, step: int, time_used: float = 0.0) -> None:
        """Set each parameter group's learning rate for optimizer step ``step``."""
        multiplier = self.factor(step, time_used) * self.scale
        for group, base_lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base_lr * multiplier

    def observe(self, loss: float) -> None:
        """Report an epoch's monitored loss (only ``plateau`` reacts)."""
        if self.name != "plateau":
            return
        if self.best is None or loss < self.best - self.min_delta:
            self.best = loss
            self.bad_epochs = 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.plateau_patience:
            self.scale *= self.plateau_factor
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """The plateau state (JSON-serialisable); the curve itself needs none."""
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = state["scale"]
        self.best = state["best"]
        self.bad_epochs = state["bad_epochs"]
