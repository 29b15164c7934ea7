"""The training loop shared by every task.

    from lstmkit.train import TrainConfig, fit

    result = fit(model, train_data, loss_fn, TrainConfig(epochs=20), val_data=val_data,
                 run_dir=run_dir)

One module per concept: ``config`` (TrainConfig), ``loop`` (fit, TrainResult),
``schedule`` (learning-rate curves), ``batches`` (global batches and per-process
shares), ``seeding`` (randomness from (seed, position)), ``checkpoint`` (the files
in a run directory), ``distributed`` (torchrun processes), ``progress`` (bar, log).
"""

from lstmkit.train.config import SCHEDULES, TrainConfig
from lstmkit.train.distributed import is_main_process, world_size
from lstmkit.train.loop import (
    STOP_COMPLETED,
    STOP_EARLY,
    STOP_MAX_STEPS,
    STOP_TIME_BUDGET,
    TrainResult,
    evaluate_loss,
    fit,
    observe_epochs,
)

__all__ = [
    "SCHEDULES",
    "STOP_COMPLETED",
    "STOP_EARLY",
    "STOP_MAX_STEPS",
    "STOP_TIME_BUDGET",
    "TrainConfig",
    "TrainResult",
    "evaluate_loss",
    "fit",
    "is_main_process",
    "observe_epochs",
    "world_size",
]
