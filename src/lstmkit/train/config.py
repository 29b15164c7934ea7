"""TrainConfig: every knob of the training loop, checked before training starts."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from lstmkit.errors import LstmkitError

SCHEDULES = ("constant", "cosine", "linear", "onecycle", "plateau")


@dataclass
class TrainConfig:
    """Options of :func:`lstmkit.train.fit`.

    ``batch_size`` is the global batch: under torchrun each of the N processes trains
    on its share of every batch, so the result matches one process with the same
    ``batch_size``. Learning-rate schedules advance once per optimizer step, after
    ``warmup_steps`` of linear warmup; ``plateau`` multiplies the learning rate by
    ``plateau_factor`` after ``plateau_patience`` epochs without improvement of the
    validation loss (the training loss when there is no validation data).
    """

    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    grad_clip: float | None = 1.0
    patience: int | None = 10
    min_delta: float = 0.0
    seed: int = 0
    shuffle: bool = True
    progress: bool = True
    max_steps: int | None = None
    time_budget_s: float | None = None
    device: str = "cpu"
    plateau_factor: float = 0.5
    plateau_patience: int = 2

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first option that is out of range."""
        _at_least("epochs", self.epochs, 1, "--epochs")
        _at_least("batch_size", self.batch_size, 1, "--batch-size")
        _positive("lr", self.lr, "--lr")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise LstmkitError(
                f"weight_decay must be 0 or more, got {self.weight_decay}; fix --weight-decay"
            )
        if self.schedule not in SCHEDULES:
            raise LstmkitError(
                f"unknown learning-rate schedule {self.schedule!r}; choose one of "
                f"{', '.join(SCHEDULES)} (--schedule)"
            )
        _at_least("warmup_steps", self.warmup_steps, 0, "--warmup-steps")
        if self.grad_clip is not None:
            _positive("grad_clip", self.grad_clip, "--grad-clip (or turn clipping off)")
        if self.patience is not None:
            _at_least("patience", self.patience, 1, "--patience (or turn early stopping off)")
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise LstmkitError(f"min_delta must be 0 or more, got {self.min_delta}")
        _at_least("seed", self.seed, 0, "--seed")
        if self.max_steps is not None:
            _at_least("max_steps", self.max_steps, 1, "--max-steps")
        if self.time_budget_s is not None:
            _positive("time_budget_s", self.time_budget_s, "--time-budget")
        if not 0 < self.plateau_factor < 1:
            raise LstmkitError(
                f"plateau_factor must lie strictly between 0 and 1, got {self.plateau_factor}"
            )
        _at_least("plateau_patience", self.plateau_patience, 1, "plateau_patience")


def _at_least(name: str, value: object, low: int, option: str) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise LstmkitError(f"{name} must be an integer of at least {low}, got {value!r}; "
                           f"fix {option}")


def _positive(name: str, value: object, option: str) -> None:
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise LstmkitError(f"{name} must be a positive number, got {value!r}; fix {option}")
