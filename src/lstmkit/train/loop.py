"""fit(): the training loop every task shares.

One optimizer step:

    seed the generators from (seed, step, rank)        reproducible dropout, at any step
    batch   = this process's share of the global batch
    lr      = base_lr * schedule(step)
    loss    = loss_fn(model, batch)                    mean over the share
    (loss * share / global_batch).backward()           so summed gradients = global mean
    sum gradients over processes, clip their norm, AdamW step

One epoch: the steps over the epoch's order, then the validation loss, early-stopping
bookkeeping, and (rank 0) an atomic checkpoint in the run directory.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lstmkit.errors import LstmkitError
from lstmkit.train.batches import Share, fetch, global_batches, plan_shares, to_device
from lstmkit.train.checkpoint import TrainerState, has_checkpoint, load_checkpoint, save_checkpoint
from lstmkit.train.config import TrainConfig
from lstmkit.train.distributed import Processes, processes, resolve_device
from lstmkit.train.progress import EpochProgress, log_epoch
from lstmkit.train.schedule import LearningRateSchedule
from lstmkit.train.seeding import epoch_order, seed_everything, seed_step

logger = logging.getLogger("lstmkit.train")

LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]
EpochObserver = Callable[[int, float], None]
_epoch_observers: list[EpochObserver] = []


@contextlib.contextmanager
def observe_epochs(observer: EpochObserver) -> Iterator[None]:
    """Within the block, every :func:`fit` with validation data calls
    ``observer(epoch, val_loss)`` after each epoch (once its checkpoint is written). Tuning
    reports the losses to its pruner this way, without a task passing anything along; an
    exception the observer raises stops the fit (one process: under torchrun only rank 0
    would see it)."""
    _epoch_observers.append(observer)
    try:
        yield
    finally:
        _epoch_observers.remove(observer)

STOP_COMPLETED = "completed"  # all configured epochs ran
STOP_EARLY = "early_stopping"  # validation loss stopped improving for `patience` epochs
STOP_MAX_STEPS = "max_steps"
STOP_TIME_BUDGET = "time_budget"

# Options whose change between a run and its resumption breaks exact continuation.
_CONTINUATION_OPTIONS = (
    "batch_size", "lr", "weight_decay", "schedule", "warmup_steps", "grad_clip", "seed",
    "shuffle",
)
# Schedules whose curve is stretched over the run's length (epochs, max_steps).
_LENGTH_DEPENDENT_SCHEDULES = ("cosine", "linear", "onecycle")


@dataclass
class TrainResult:
    """What :func:`fit` did. Epochs are numbered from 1.

    ``best_val_loss`` is None without validation data (then the best epoch is the
    last). ``stopped_early`` is True whenever fewer epochs ran than configured;
    ``stop_reason`` says why: ``"completed"``, ``"early_stopping"``, ``"max_steps"``
    or ``"time_budget"``. ``history`` has one dict per epoch with the columns of
    log.csv: epoch, step, train_loss, val_loss, lr, seconds. ``seconds`` is the sum
    of the epochs' times, including those before a resume.
    """

    best_val_loss: float | None
    best_epoch: int
    epochs_run: int
    steps: int
    stopped_early: bool
    stop_reason: str
    history: list[dict[str, Any]]
    seconds: float


def fit(
    model: torch.nn.Module,
    train_data: Dataset,
    loss_fn: LossFn,
    config: TrainConfig,
    val_data: Dataset | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    collate_fn: Callable[[list], Any] | None = None,
    param_groups: Iterable[dict[str, Any]] | None = None,
    hooks: Any = None,
    started: float | None = None,
    final_passes: int = 0,
    min_epochs: int = 0,
) -> TrainResult:
    """Train ``model`` with AdamW and return a :class:`TrainResult`.

    ``loss_fn(model, batch)`` returns the scalar mean loss over ``batch``, which is
    collated by ``collate_fn`` (torch's ``default_collate`` by default) and moved to
    ``config.device``. If ``loss_fn`` has ``on_epoch_start(epoch)`` or
    ``on_eval_start()`` they are called before each epoch's training and before each
    validation (to reset state carried between batches). The validation loss is the
    item-weighted mean of ``loss_fn`` over ``val_data`` in eval mode without gradients.

    ``param_groups`` are AdamW's parameter groups (their own ``lr`` or
    ``weight_decay`` override the config's); the schedule scales every group's
    learning rate alike. ``hooks.on_epoch_start(epoch, model, optimizer)``, if
    present, runs before each epoch; after a resume it runs only for the epochs still
    to do, so it should set state from ``epoch`` alone (e.g. unfreeze the top
    ``epoch`` layer groups), not change it step by step. ``hooks.validation_loss(model)``,
    if present, replaces the validation loss as the criterion of early stopping and of
    the best epoch (lower is better; translation returns -BLEU); every process must
    compute the same value. ``hooks.on_epoch_end(epoch, model)`` runs on rank 0 at the end
    of every epoch (a stopped one too), before its checkpoint is written.

    ``config.time_budget_s`` counts from ``started`` (a ``time.monotonic()`` reading;
    default: now), so a task can make the budget cover its whole command, and keeps
    back the time of ``final_passes`` validation passes for the evaluation after
    training. Under a budget the schedule's curve runs on the larger of the step and
    the time fractions, so the learning rate has decayed when the time is up (such a
    run stops where the clock says, so it does not repeat exactly).

    ``min_epochs`` is a floor under early stopping: up to that epoch every epoch counts
    as the best so far (as without validation data), so neither ``patience`` nor the
    choice of the best epoch can go back to a model that has not learned yet; from the
    floor on, the validation criterion decides and patience counts. The default 0 lets
    the criterion decide from the first epoch.

    With ``run_dir``, rank 0 keeps a checkpoint there (see
    :mod:`lstmkit.train.checkpoint`) and ``resume=True`` continues from it, giving
    the same weights as an uninterrupted run. At the end the best epoch's weights
    are loaded into ``model``. Under torchrun each process trains on its share of
    every global batch (see :mod:`lstmkit.train.distributed`).
    """
    config.validate()
    device = resolve_device(config.device)
    if len(train_data) == 0:
        raise LstmkitError("the training data is empty; give it at least one example")
    if val_data is not None and len(val_data) == 0:
        raise LstmkitError("the validation data is empty; give it examples or pass none")
    if isinstance(min_epochs, bool) or not isinstance(min_epochs, int) or min_epochs < 0:
        raise LstmkitError(f"min_epochs must be a whole number of 0 or more, got "
                           f"{min_epochs!r}; fix --min-epochs")
    path = None if run_dir is None else Path(run_dir)
    if resume and path is None:
        raise LstmkitError("resume needs the run directory to continue from (--run-dir)")
    if not resume and path is not None and has_checkpoint(path):
        raise LstmkitError(
            f"{path} already holds a training checkpoint; pass --resume to continue it, "
            "or use --overwrite or another directory to start a new run"
        )
    with processes(device) as procs:
        trainer = _Trainer(model, train_data, loss_fn, config, val_data, path, collate_fn,
                           param_groups, hooks, procs, started, final_passes, min_epochs)
        if resume:
            trainer.resume()
        return trainer.run()


def evaluate_loss(
    model: torch.nn.Module,
    data: Dataset,
    loss_fn: LossFn,
    batch_size: int = 32,
    collate_fn: Callable[[list], Any] | None = None,
) -> float:
    """Item-weighted mean of ``loss_fn`` over ``data``, the way :func:`fit` validates."""
    device = next(model.parameters()).device
    return _mean_loss(model, data, loss_fn, batch_size, collate_fn,
                      Processes(rank=0, world_size=1, device=device))


def _mean_loss(
    model: torch.nn.Module,
    data: Dataset,
    loss_fn: LossFn,
    batch_size: int,
    collate_fn: Callable[[list], Any] | None,
    procs: Processes,
) -> float:
    """Each process evaluates its share of every batch; sums are added over processes."""
    on_eval_start = getattr(loss_fn, "on_eval_start", None)
    if on_eval_start is not None:
        on_eval_start()
    was_training = model.training
    model.eval()
    total, items = 0.0, 0
    with torch.no_grad():
        order = np.arange(len(data))
        batches = global_batches(data, order, batch_size)
        for share in plan_shares(batches, procs.rank, procs.world_size, False):
            if len(share.indices) == 0:
                continue
            batch = to_device(fetch(data, share.indices, collate_fn), procs.device)
            total += float(loss_fn(model, batch)) * len(share.indices)
            items += len(share.indices)
    model.train(was_training)
    total, items = procs.sum([total, float(items)])
    return total / items


def _copy_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in
            model.state_dict().items()}


class _Trainer:
    """The state of one call to :func:`fit`; see the module docstring for the step."""

    def __init__(
        self,
        model: torch.nn.Module,
        train_data: Dataset,
        loss_fn: LossFn,
        config: TrainConfig,
        val_data: Dataset | None,
        run_dir: Path | None,
        collate_fn: Callable[[list], Any] | None,
        param_groups: Iterable[dict[str, Any]] | None,
        hooks: Any,
        procs: Processes,
        started: float | None = None,
        final_passes: int = 0,
        min_epochs: int = 0,
    ) -> None:
        self.started = time.monotonic() if started is None else started
        self.final_passes = final_passes
        self.min_epochs = min_epochs
        self.validation_seconds = 0.0  # of the latest validation pass
        self.model, self.loss_fn, self.config = model, loss_fn, config
        self.train_data, self.val_data, self.collate_fn = train_data, val_data, collate_fn
        self.run_dir, self.hooks, self.procs = run_dir, hooks, procs
        seed_everything(config.seed, procs.device)
        model.to(procs.device)
        procs.broadcast_module(model)
        self.optimizer = torch.optim.AdamW(
            model.parameters() if param_groups is None else param_groups,
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        order = np.arange(len(train_data))
        steps_per_epoch = len(plan_shares(global_batches(train_data, order, config.batch_size),
                                          procs.rank, procs.world_size, True))
        if steps_per_epoch == 0:
            raise LstmkitError(
                f"the training data has {len(train_data)} examples, fewer than the "
                f"{procs.world_size} training processes; use fewer processes or more data"
            )
        total_steps = config.epochs * steps_per_epoch
        if config.max_steps is not None:
            total_steps = min(total_steps, config.max_steps)
        self.schedule = LearningRateSchedule(
            config.schedule,
            [group["lr"] for group in self.optimizer.param_groups],
            total_steps,
            config.warmup_steps,
            config.plateau_factor,
            config.plateau_patience,
            config.min_delta,
        )
        self.state = TrainerState()
        self.best_weights: dict[str, torch.Tensor] | None = None

    # ----------------------------------------------------------------- resume

    def resume(self) -> None:
        """Load the run directory's checkpoint (all processes read the same files)."""
        assert self.run_dir is not None
        state, saved, train_size, best = load_checkpoint(self.run_dir, self.model,
                                                         self.optimizer)
        current = asdict(self.config)
        options = _CONTINUATION_OPTIONS
        if self.config.schedule in _LENGTH_DEPENDENT_SCHEDULES:
            options += ("epochs", "max_steps")
        changed = [key for key in options if saved.get(key) != current[key]]
        if train_size != len(self.train_data):
            changed.append(f"training data size ({train_size} -> {len(self.train_data)})")
        if changed and self.procs.is_main:
            logger.warning("resuming with changed %s: the run will not match an "
                           "uninterrupted one", ", ".join(changed))
        self.state = state
        if state.schedule:
            self.schedule.load_state_dict(state.schedule)
        self.best_weights = best

    # ----------------------------------------------------------------- the run

    def run(self) -> TrainResult:
        while (reason := self._finished()) is None:
            interrupted = self._train_epoch(self.state.completed_epochs + 1)
            if interrupted is not None and self.state.completed_epochs < self.config.epochs:
                reason = interrupted
                break
        state = self.state
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        if self.procs.is_main:
            logger.info("training stopped (%s) after %d steps; best epoch %d",
                        reason, state.step, state.best_epoch)
        return TrainResult(
            best_val_loss=state.best_val_loss,
            best_epoch=state.best_epoch,
            epochs_run=state.completed_epochs + (1 if state.batches_done else 0),
            steps=state.step,
            stopped_early=reason != STOP_COMPLETED,
            stop_reason=reason,
            history=[dict(row) for row in state.history],
            seconds=sum(row["seconds"] for row in state.history),
        )

    def _finished(self) -> str | None:
        """Why training should not start another epoch, or None to go on."""
        config, state = self.config, self.state
        if state.completed_epochs >= config.epochs:
            return STOP_COMPLETED
        if (config.patience is not None and self.val_data is not None
                and state.bad_epochs >= config.patience):
            return STOP_EARLY
        if config.max_steps is not None and state.step >= config.max_steps:
            return STOP_MAX_STEPS
        return None

    def _train_epoch(self, epoch: int) -> str | None:
        """Train epoch ``epoch`` (from where a stopped run left it), then validate and save.

        Returns ``"max_steps"`` or ``"time_budget"`` if that limit stopped it.
        """
        config, state, procs = self.config, self.state, self.procs
        epoch_started = time.monotonic()
        on_epoch_start = getattr(self.hooks, "on_epoch_start", None)
        if on_epoch_start is not None:
            on_epoch_start(epoch, self.model, self.optimizer)
        if hasattr(self.loss_fn, "on_epoch_start"):
            self.loss_fn.on_epoch_start(epoch)
        self.model.train()
        order = epoch_order(len(self.train_data), config.seed, epoch, config.shuffle)
        shares = plan_shares(global_batches(self.train_data, order, config.batch_size),
                             procs.rank, procs.world_size, True)
        progress = EpochProgress(epoch, config.epochs, len(shares), state.batches_done,
                                 config.progress and procs.is_main)
        interrupted = None
        try:
            for share in shares[state.batches_done:]:
                self._step(epoch, share)
                progress.update(state.epoch_loss_sum / state.epoch_items)
                if config.max_steps is not None and state.step >= config.max_steps:
                    interrupted = STOP_MAX_STEPS
                    break
                if config.time_budget_s is not None and procs.any(self._time_used() >= 1.0):
                    interrupted = STOP_TIME_BUDGET
                    break
        finally:
            progress.close()
        self._end_epoch(epoch, state.batches_done == len(shares), epoch_started)
        return interrupted

    def _step(self, epoch: int, share: Share) -> None:
        config, state, procs = self.config, self.state, self.procs
        seed_step(config.seed, state.step, procs.rank, procs.device)
        batch = to_device(fetch(self.train_data, share.indices, self.collate_fn), procs.device)
        self.schedule.apply(self.optimizer, state.step,
                            0.0 if config.time_budget_s is None else self._time_used())
        loss = self.loss_fn(self.model, batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise TypeError("loss_fn(model, batch) must return a scalar tensor (the mean loss)")
        items = len(share.indices)
        mean_loss = procs.sum([loss.item() * items])[0] / share.global_size
        if not math.isfinite(mean_loss):
            raise self._diverged(epoch, "loss", mean_loss)
        # Weight by this share's part of the global batch: summing the processes'
        # gradients then gives the gradient of the global batch's mean loss.
        (loss * (items / share.global_size)).backward()
        procs.sum_gradients(self.parameters)
        if config.grad_clip is not None:
            trainable = [p for p in self.parameters if p.grad is not None]
            norm = float(torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip))
            if not math.isfinite(norm):
                raise self._diverged(epoch, "gradient norm", norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.batches_done += 1
        state.epoch_loss_sum += mean_loss * share.global_size
        state.epoch_items += share.global_size

    def _time_used(self) -> float:
        """The fraction of the time budget spent, the evaluation's share kept back: the
        validation that ends the stopped epoch and the task's final passes."""
        passes = self.final_passes + (self.val_data is not None)
        training_time = self.config.time_budget_s - passes * self.validation_seconds
        return (time.monotonic() - self.started) / max(training_time, 1e-9)

    def _diverged(self, epoch: int, what: str, value: float) -> LstmkitError:
        # The weights are not updated by the bad step; the checkpoint on disk is the
        # last good epoch's.
        self.optimizer.zero_grad(set_to_none=True)
        clip = ("lower --grad-clip" if self.config.grad_clip is not None
                else "enable gradient clipping (--grad-clip)")
        return LstmkitError(
            f"training diverged at epoch {epoch} step {self.state.step + 1}: {what} is "
            f"{value}; lower the learning rate (--lr) or {clip}"
        )

    def _end_epoch(self, epoch: int, complete: bool, epoch_started: float) -> None:
        """Validate, track the best weights, record the epoch and save the checkpoint."""
        config, state = self.config, self.state
        train_loss = state.epoch_loss_sum / state.epoch_items
        val_loss = None
        if self.val_data is not None:
            validation_started = time.monotonic()
            own_criterion = getattr(self.hooks, "validation_loss", None)
            val_loss = (own_criterion(self.model) if own_criterion is not None else
                        _mean_loss(self.model, self.val_data, self.loss_fn, config.batch_size,
                                   self.collate_fn, self.procs))
            self.validation_seconds = time.monotonic() - validation_started
            if not math.isfinite(val_loss):
                raise self._diverged(epoch, "validation loss", val_loss)
        # Without validation data the best weights are simply the latest; so are they
        # up to the floor of min_epochs, before which the model may not have learned yet.
        improved = (
            val_loss is None or state.best_val_loss is None or epoch <= self.min_epochs
            or val_loss < state.best_val_loss - config.min_delta
        )
        if improved:
            state.best_val_loss = val_loss
            state.best_epoch = epoch
            state.bad_epochs = 0
            self.best_weights = _copy_weights(self.model)
        else:
            state.bad_epochs += 1
        self.schedule.observe(train_loss if val_loss is None else val_loss)
        state.schedule = self.schedule.state_dict()
        row = {
            "epoch": epoch,
            "step": state.step,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": time.monotonic() - epoch_started,
        }
        state.history.append(row)
        if complete:
            state.completed_epochs += 1
            state.batches_done, state.epoch_loss_sum, state.epoch_items = 0, 0.0, 0
        if not self.procs.is_main:
            return
        on_epoch_end = getattr(self.hooks, "on_epoch_end", None)
        if on_epoch_end is not None:  # before the checkpoint that marks the epoch done
            on_epoch_end(epoch, self.model)
        if self.run_dir is not None:
            save_checkpoint(self.run_dir, self.model, self.optimizer, state,
                            asdict(config), len(self.train_data),
                            self.best_weights if improved else None)
        log_epoch(row, config.epochs)
        if val_loss is not None:
            for observer in _epoch_observers:
                observer(epoch, val_loss)
