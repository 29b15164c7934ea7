"""The files training keeps in a run directory, and reading them back to resume.

    last.safetensors       model weights at the end of the latest epoch
    optimizer.safetensors  AdamW state at that point (tensors + JSON header, no pickle)
    trainer_state.json     epoch, step, best loss, early-stopping and schedule state,
                           history, the TrainConfig used, written after the two above
    best.safetensors       weights of the epoch with the best validation loss
    log.csv                one row per epoch, rewritten from the history

Each file is replaced atomically. ``trainer_state.json`` is written last and both
weight files carry the step they belong to, so a process killed between two writes
is detected on resume instead of silently mixing epochs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, atomic_write_text, read_json
from lstmkit.io.weights import (
    load_optimizer_state,
    load_weights,
    read_weights_metadata,
    save_optimizer_state,
    save_weights,
)

LAST_WEIGHTS_FILE = "last.safetensors"
BEST_WEIGHTS_FILE = "best.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"
LOG_FILE = "log.csv"
LOG_COLUMNS = ("epoch", "step", "train_loss", "val_loss", "lr", "seconds")
CHECKPOINT_FORMAT = 1
_STEP_KEY = "lstmkit.step"


@dataclass
class TrainerState:
    """Everything besides weights and optimizer that the loop needs to continue."""

    completed_epochs: int = 0
    batches_done: int = 0  # batches of the next epoch already trained (stop mid-epoch)
    epoch_loss_sum: float = 0.0  # sum of loss x items over those batches
    epoch_items: int = 0
    step: int = 0  # optimizer steps taken
    best_val_loss: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0  # evaluations since the validation loss last improved
    schedule: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainerState,
    config: dict[str, Any],
    train_size: int,
    best_weights: dict[str, torch.Tensor] | None,
) -> None:
    """Write the end-of-epoch checkpoint; ``best_weights`` only when they changed."""
    tag = {_STEP_KEY: str(state.step)}
    if best_weights is not None:
        save_weights(run_dir / BEST_WEIGHTS_FILE, best_weights, tag)
    save_weights(run_dir / LAST_WEIGHTS_FILE, model.state_dict(), tag)
    save_optimizer_state(run_dir / OPTIMIZER_FILE, optimizer.state_dict(), tag)
    atomic_write_json(
        run_dir / TRAINER_STATE_FILE,
        {
            "format_version": CHECKPOINT_FORMAT,
            "state": asdict(state),
            "config": config,
            "train_size": train_size,
        },
    )
    write_log(run_dir / LOG_FILE, state.history)


def write_log(path: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``log.csv`` from the per-epoch history (empty val_loss without validation)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: "" if row[key] is None else row[key] for key in LOG_COLUMNS})
    atomic_write_text(path, buffer.getvalue())


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / TRAINER_STATE_FILE).is_file()


def load_checkpoint(
    run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[TrainerState, dict[str, Any], int, dict[str, torch.Tensor] | None]:
    """Load the last checkpoint into ``model`` and ``optimizer``.

    Returns the trainer state, the TrainConfig it was trained with (as a dict), the
    training set's size then, and the best weights so far (None if never saved).
    """
    if not has_checkpoint(run_dir):
        raise LstmkitError(
            f"cannot resume: {run_dir} holds no training checkpoint ({TRAINER_STATE_FILE} "
            "is missing); start a new run without --resume"
        )
    document = read_json(run_dir / TRAINER_STATE_FILE)
    if document.get("format_version") != CHECKPOINT_FORMAT:
        raise LstmkitError(
            f"{run_dir / TRAINER_STATE_FILE} has checkpoint format "
            f"{document.get('format_version')!r}; this lstmkit reads format "
            f"{CHECKPOINT_FORMAT}: resume it with the lstmkit that wrote it, or start anew"
        )
    state = TrainerState(**document["state"])
    for name in (LAST_WEIGHTS_FILE, OPTIMIZER_FILE):
        step = read_weights_metadata(run_dir / name).get(_STEP_KEY)
        if step != str(state.step):
            raise LstmkitError(
                f"cannot resume: {run_dir / name} is from step {step} but "
                f"{TRAINER_STATE_FILE} from step {state.step} (the run was killed while "
                "saving); start a new run without --resume"
            )
    try:
        model.load_state_dict(load_weights(run_dir / LAST_WEIGHTS_FILE))
        optimizer.load_state_dict(load_optimizer_state(run_dir / OPTIMIZER_FILE))
    except (RuntimeError, ValueError, KeyError) as error:
        raise LstmkitError(
            f"cannot resume: the checkpoint in {run_dir} does not fit this model or its "
            f"parameter groups ({error}); resume with the settings the run started with"
        ) from error
    best_path = run_dir / BEST_WEIGHTS_FILE
    best = load_weights(best_path) if best_path.is_file() else None
    return state, document["config"], document["train_size"], best
