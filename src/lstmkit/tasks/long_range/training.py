"""Training one experiment: the step loop with a test measurement every ``eval_every``
steps, its checkpoints, and what the run reached."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, read_json
from lstmkit.io.weights import (
    load_optimizer_state,
    load_weights,
    read_weights_metadata,
    save_optimizer_state,
    save_weights,
)
from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.tasks.long_range.config import TASK, ExperimentConfig
from lstmkit.tasks.long_range.models import SequenceModel, build_model
from lstmkit.tasks.long_range.specs import TaskSpec, task_spec


@dataclass
class ExperimentResult:
    """What a run reached; ``curve`` holds one (step, seconds, test metrics) per evaluation."""

    config: dict
    hidden: int
    parameters: int
    backend: str
    metric_name: str
    baseline: float
    solved_metric: str
    solved_threshold: float
    final_metrics: dict[str, float]
    steps: int
    seconds: float
    stop_reason: str
    steps_to_beat_baseline: int | None
    steps_to_solve: int | None
    curve: list[dict] = field(default_factory=list)

    @property
    def final_metric(self) -> float:
        return self.final_metrics[self.metric_name]

    def evaluation(self) -> Evaluation:
        """The final test metrics beside the task's memoryless baseline."""
        return Evaluation(
            task=TASK, data=f"{self.config['task']} test set ({self.config['test_size']} "
                            "sequences)",
            rows={"model": dict(self.final_metrics),
                  "baseline": {self.metric_name: self.baseline}},
            labels={"model": f"{self.config['model']} {self.config['variant']}",
                    "baseline": "memoryless baseline"},
            lower_is_better=[] if self.metric_name == "accuracy" else [self.metric_name],
            details={"steps_to_beat_baseline": self.steps_to_beat_baseline,
                     "steps_to_solve": self.steps_to_solve, "steps": self.steps,
                     "stop_reason": self.stop_reason})


@torch.no_grad()
def evaluate(model: SequenceModel, spec: TaskSpec, chunk: int = 250) -> dict[str, float]:
    """Test metrics of the model, computed in chunks to bound memory at long T."""
    model.eval()
    x, y = spec.test_set
    outputs = torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    model.train()
    return spec.metrics(outputs, y)


def run_experiment(
    config: ExperimentConfig,
    progress: Callable[[int, float, dict[str, float]], None] | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    started: float | None = None,
) -> tuple[ExperimentResult, SequenceModel]:
    """Train one model; returns what it reached and the trained model.

    This is a small step-based loop rather than lstmkit.train.fit: the synthetic
    tasks draw a fresh batch every step (there are no epochs), and "steps to
    solve" needs a test measurement every ``eval_every`` steps. Runs on the adding
    and copy tasks stop once solved; digits runs train for all their steps (or
    their time budget), since stopping on the test score would select on it.

    With ``run_dir`` a checkpoint is kept there at every measurement (model, Adam,
    the batch generator, the curve); ``resume`` continues from it to the result of
    an uninterrupted run. The time budget counts from ``started`` (a time.monotonic()
    reading; default: now).
    """
    torch.manual_seed(config.seed)
    spec = task_spec(config)
    model = build_model(config, spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    stop_on_solve = config.task != "digits"

    loop: dict[str, Any] = {"step": 0, "seconds": 0.0, "curve": [], "beat_at": None,
                            "solved_at": None}
    if resume and run_dir is not None:
        loop = _load_checkpoint(run_dir, model, optimizer, generator)
    curve: list[dict] = loop["curve"]
    beat_at: int | None = loop["beat_at"]
    solved_at: int | None = loop["solved_at"]
    stop_reason = "steps"
    start = (time.monotonic() if started is None else started) - loop["seconds"]
    step = loop["step"]
    final_metrics: dict[str, float] | None = curve[-1] if curve else None
    if stop_on_solve and solved_at is not None:  # resumed after the solving measurement
        stop_reason = "solved"
    while step < config.steps and stop_reason != "solved":
        x, y = spec.draw_batch(config.batch_size, generator)
        loss = spec.loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        final_metrics = None
        if not math.isfinite(loss.item()):
            stop_reason = "diverged"
            break
        out_of_time = (config.time_budget_s is not None
                       and time.monotonic() - start >= config.time_budget_s)
        if step % config.eval_every and step < config.steps and not out_of_time:
            continue
        metrics = final_metrics = evaluate(model, spec)
        seconds = time.monotonic() - start
        curve.append({"step": step, "seconds": round(seconds, 2), "train_loss": loss.item(),
                      **metrics})
        if progress is not None:
            progress(step, seconds, metrics)
        if beat_at is None and spec.beats_baseline(metrics):
            beat_at = step
        if solved_at is None and spec.is_solved(metrics):
            solved_at = step
        if run_dir is not None:
            _save_checkpoint(run_dir, model, optimizer, generator, {
                "step": step, "seconds": seconds, "curve": curve, "beat_at": beat_at,
                "solved_at": solved_at})
        if solved_at is not None and stop_on_solve:
            stop_reason = "solved"
            break
        if out_of_time:
            stop_reason = "time budget"
            break

    if final_metrics is None:  # diverged between two measurements
        final_metrics = evaluate(model, spec)
    final_metrics = {name: final_metrics[name] for name in final_metrics
                     if name not in ("step", "seconds", "train_loss")}
    result = ExperimentResult(
        config=asdict(config),
        hidden=model.encoder.hidden_size,
        parameters=sum(p.numel() for p in model.parameters()),
        backend=str(model.encoder.last_backend),
        metric_name=spec.metric_name,
        baseline=spec.baseline,
        solved_metric=spec.solved_metric,
        solved_threshold=spec.solved_threshold,
        final_metrics=final_metrics,
        steps=step,
        seconds=round(time.monotonic() - start, 2),
        stop_reason=stop_reason,
        steps_to_beat_baseline=beat_at,
        steps_to_solve=solved_at,
        curve=curve,
    )
    return result, model


_LAST_FILE, _OPTIMIZER_FILE, _STATE_FILE = ("last.safetensors", "optimizer.safetensors",
                                            "trainer_state.json")
_STEP_KEY = "lstmkit.step"


def _save_checkpoint(run_dir: Path, model: SequenceModel, optimizer: torch.optim.Optimizer,
                     generator: torch.Generator, loop: dict[str, Any]) -> None:
    """Weights with the batch generator's state, Adam, then the loop's state last; the
    step tag on both weight files detects a kill between the writes."""
    tag = {_STEP_KEY: str(loop["step"])}
    save_weights(run_dir / _LAST_FILE, {**model.state_dict(),
                                        "generator_state": generator.get_state()}, tag)
    save_optimizer_state(run_dir / _OPTIMIZER_FILE, optimizer.state_dict(), tag)
    atomic_write_json(run_dir / _STATE_FILE, loop)


def _load_checkpoint(run_dir: Path, model: SequenceModel, optimizer: torch.optim.Optimizer,
                     generator: torch.Generator) -> dict[str, Any]:
    if not (run_dir / _STATE_FILE).is_file():
        raise LstmkitError(f"cannot resume: {run_dir} holds no checkpoint yet; start the run "
                           "again with --overwrite")
    loop = read_json(run_dir / _STATE_FILE)
    for name in (_LAST_FILE, _OPTIMIZER_FILE):
        if read_weights_metadata(run_dir / name).get(_STEP_KEY) != str(loop["step"]):
            raise LstmkitError(f"cannot resume: {run_dir} was killed while saving its "
                               "checkpoint; start the run again with --overwrite")
    weights = load_weights(run_dir / _LAST_FILE)
    generator.set_state(weights.pop("generator_state"))
    model.load_state_dict(weights)
    optimizer.load_state_dict(load_optimizer_state(run_dir / _OPTIMIZER_FILE))
    return loop
