"""The tasks (adding, copy, digits): each one's shapes, batches, loss, test set, metrics,
memoryless baseline and the threshold that counts as solving it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from lstmkit.data.long_range import (
    ADDING_BASELINE_MSE,
    COPY_ALPHABET,
    COPY_LENGTH,
    DIGITS_CLASSES,
    DigitsSplit,
    adding_batch,
    copy_baseline_cross_entropy,
    copy_batch,
    load_digit_sequences,
)
from lstmkit.tasks.long_range.config import ExperimentConfig

# the test set is the same for every model and seed, so rows of a table compare on one set
TEST_SEED = 2016
ADDING_SOLVED_MSE = 0.01
COPY_SOLVED_RECALL = 0.99
DIGITS_TARGET_ACCURACY = 0.95
PERMUTED_DIGITS_TARGET_ACCURACY = 0.90


@dataclass
class TaskSpec:
    """What a task needs: shapes, batches, loss, the measured metric and its thresholds.

    ``metric_name`` is the headline test metric, compared with ``baseline``;
    ``solved_metric`` crossing ``solved_threshold`` (below it when
    ``solved_below``) counts as solving the task.
    """

    task: str
    input_size: int
    output_size: int
    every_step: bool
    metric_name: str
    lower_is_better: bool
    baseline: float
    solved_metric: str
    solved_threshold: float
    solved_below: bool
    draw_batch: Callable[[int, torch.Generator], tuple[Tensor, Tensor]]
    test_set: tuple[Tensor, Tensor]
    loss: Callable[[Tensor, Tensor], Tensor]
    metrics: Callable[[Tensor, Tensor], dict[str, float]]

    def is_solved(self, metrics: dict[str, float]) -> bool:
        value = metrics[self.solved_metric]
        return value < self.solved_threshold if self.solved_below else (
            value >= self.solved_threshold)

    def beats_baseline(self, metrics: dict[str, float]) -> bool:
        return beats_baseline(self.task, metrics[self.metric_name], self.baseline)


def _adding_spec(config: ExperimentConfig) -> TaskSpec:
    T = config.length

    def loss(prediction: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(prediction.squeeze(-1), target)

    return TaskSpec(
        task="adding", input_size=2, output_size=1, every_step=False, metric_name="mse",
        lower_is_better=True,
        baseline=ADDING_BASELINE_MSE, solved_metric="mse", solved_threshold=ADDING_SOLVED_MSE,
        solved_below=True,
        draw_batch=lambda size, generator: adding_batch(size, T, generator),
        test_set=adding_batch(config.test_size, T, torch.Generator().manual_seed(TEST_SEED)),
        loss=loss,
        metrics=lambda prediction, target: {"mse": loss(prediction, target).item()},
    )


def _copy_spec(config: ExperimentConfig) -> TaskSpec:
    T = config.length

    def one_hot_batch(size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        symbols, target = copy_batch(size, T, generator)
        return F.one_hot(symbols, COPY_ALPHABET).float(), target  # (B, T + 20, 10)

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(-1, COPY_ALPHABET), target.reshape(-1))

    def metrics(logits: Tensor, target: Tensor) -> dict[str, float]:
        recalled = logits[:, -COPY_LENGTH:].argmax(-1) == target[:, -COPY_LENGTH:]
        return {"cross_entropy": loss(logits, target).item(),
                "recall_accuracy": recalled.float().mean().item()}

    test_symbols, test_target = copy_batch(config.test_size, T,
                                           torch.Generator().manual_seed(TEST_SEED))
    return TaskSpec(
        task="copy", input_size=COPY_ALPHABET, output_size=COPY_ALPHABET, every_step=True,
        metric_name="cross_entropy", lower_is_better=True,
        baseline=copy_baseline_cross_entropy(T), solved_metric="recall_accuracy",
        solved_threshold=COPY_SOLVED_RECALL, solved_below=False,
        draw_batch=one_hot_batch,
        test_set=(F.one_hot(test_symbols, COPY_ALPHABET).float(), test_target),
        loss=loss, metrics=metrics,
    )


def _digits_spec(config: ExperimentConfig) -> TaskSpec:
    split: DigitsSplit = load_digit_sequences(permuted=config.permuted, seed=config.seed)
    count = len(split.train_y)
    # minibatches walk through one shuffled epoch after another
    order: list[int] = []

    def draw_batch(size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        while len(order) < size:
            order.extend(torch.randperm(count, generator=generator).tolist())
        picked = order[:size]
        del order[:size]
        return split.train_x[picked], split.train_y[picked]

    def metrics(logits: Tensor, target: Tensor) -> dict[str, float]:
        return {"accuracy": (logits.argmax(-1) == target).float().mean().item(),
                "cross_entropy": F.cross_entropy(logits, target).item()}

    majority = torch.bincount(split.test_y).max().item() / len(split.test_y)
    return TaskSpec(
        task="digits", input_size=1, output_size=DIGITS_CLASSES, every_step=False,
        metric_name="accuracy", lower_is_better=False, baseline=majority, solved_metric="accuracy",
        solved_threshold=(PERMUTED_DIGITS_TARGET_ACCURACY if config.permuted
                          else DIGITS_TARGET_ACCURACY),
        solved_below=False,
        draw_batch=draw_batch, test_set=(split.test_x, split.test_y),
        loss=F.cross_entropy, metrics=metrics,
    )


def beats_baseline(task: str, value: float, baseline: float) -> bool:
    """Whether a test metric is clearly better than the task's trivial predictor.

    Adding: 10% below 1/6, since the constant predictor's MSE on 1000 test
    sequences itself varies by about 4%. Copy: 1% below, since the memoryless
    cross-entropy is exact on any test set. Digits: accuracy above the majority class.
    """
    if task == "adding":
        return value < 0.9 * baseline
    if task == "copy":
        return value < 0.99 * baseline
    return value > baseline


def task_spec(config: ExperimentConfig) -> TaskSpec:
    return {"adding": _adding_spec, "copy": _copy_spec, "digits": _digits_spec}[config.task](
        config)
