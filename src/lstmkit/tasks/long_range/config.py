"""One long-range experiment's config: task, model, sizes and training, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit.data.long_range import DIGITS_STEPS, check_length
from lstmkit.errors import LstmkitError
from lstmkit.tasks.long_range_choices import LSTM_VARIANTS, MODELS, TASKS

TASK = "experiment"
# Adam's learning rate: 1e-2 took the adding problem at T = 100 off its plateau in half the
# steps that 3e-3 needed; 3e-3 for the cross-entropy tasks
DEFAULT_LR = {"adding": 1e-2, "copy": 3e-3, "digits": 3e-3}


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run. ``hidden`` is the plain LSTM's hidden size, which sets the budget.

    ``lr`` (Adam) defaults per task to DEFAULT_LR. The defaults are the sizes the
    results table was measured with on 2 shared cores.
    """

    task: str
    model: str = "lstm"
    length: int = DIGITS_STEPS  # T: adding's sequence length, copy's delay; digits are 64 steps
    variant: str = "plain"
    permuted: bool = False
    hidden: int = 64
    steps: int = 20_000
    time_budget_s: float | None = 600.0
    batch_size: int = 32
    lr: float | None = None
    grad_clip: float = 1.0
    eval_every: int = 100
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise LstmkitError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.model not in MODELS:
            raise LstmkitError(f"unknown --cell {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.variant not in LSTM_VARIANTS:
            raise LstmkitError(f"unknown --variant {self.variant!r}; "
                               f"choose one of {', '.join(LSTM_VARIANTS)}")
        if self.variant != "plain" and self.model != "lstm":
            raise LstmkitError(f"variant {self.variant!r} is an LSTM variant; "
                               f"the {self.model} has only 'plain'")
        if self.task == "digits" and self.length != DIGITS_STEPS:
            raise LstmkitError(f"digits are {DIGITS_STEPS} steps long; drop --length")
        if self.lr is None:
            # a frozen dataclass sets its own derived default through object.__setattr__
            object.__setattr__(self, "lr", DEFAULT_LR[self.task])
        if self.permuted and self.task != "digits":
            raise LstmkitError("--permuted applies to the digits task only")
        check_length(self.length, minimum=2 if self.task == "adding" else 1)
        # the CLI's options for the fields (hidden is --hidden-size; test_size and grad_clip
        # are Python-only)
        for name, option in (("hidden", "--hidden-size"), ("steps", "--steps"),
                             ("batch_size", "--batch-size"), ("eval_every", "--eval-every"),
                             ("test_size", "test_size")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LstmkitError(f"{option} must be a positive integer, got {value!r}")
        for name, option in (("lr", "--lr"), ("grad_clip", "grad_clip")):
            if not getattr(self, name) > 0:
                raise LstmkitError(f"{option} must be positive, got {getattr(self, name)!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise LstmkitError(f"--time-budget must be positive, got {self.time_budget_s!r}")

    @property
    def name(self) -> str:
        """A file-name-safe label such as ``adding_T200_lstm_plain_s0``."""
        task = "digits_permuted" if self.permuted else self.task
        length = "" if self.task == "digits" else f"_T{self.length}"
        return f"{task}{length}_{self.model}_{self.variant}_s{self.seed}"
