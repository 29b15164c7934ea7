"""What a classifier reports: the scores of its predictions, what training did, and
where the model looked for one input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.train import TrainResult


def scores_of(targets: np.ndarray, predicted: np.ndarray, classes: list[str]
              ) -> tuple[dict[str, float], dict[str, Any]]:
    """(accuracy and macro-F1, {per-class precision/recall/F1/support, confusion matrix})."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support as per_class_scores

    labels = list(range(len(classes)))
    precision, recall, f1, support = per_class_scores(
        targets, predicted, labels=labels, zero_division=0)
    row = {"accuracy": float(accuracy_score(targets, predicted)),
           "macro_F1": float(f1_score(targets, predicted, labels=labels, average="macro",
                                      zero_division=0))}
    details = {
        "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(n)}
                      for c, p, r, f, n in zip(classes, precision, recall, f1, support)},
        # rows: true class, columns: predicted class
        "confusion": confusion_matrix(targets, predicted, labels=labels).tolist(),
    }
    return row, details


@dataclass
class FitReport:
    """What training did, and the validation split's evaluation (None without one).

    ``seconds`` is the wall time of the training loop (validation passes included,
    baseline and final evaluation not); ``sequences_per_second`` the training sequences
    it went through per second of it.
    """

    train: TrainResult
    validation: Evaluation | None
    train_examples: int
    seconds: float
    sequences_per_second: float


@dataclass
class Explanation:
    """Where the model looked and what chosen cell units did, for one input.

    ``attention`` (T,) is None unless the pooling is attention; ``cells`` is (T, U):
    the cell state c_t of ``units`` in the top layer's forward direction, and ``gates``
    their "forget", "input" and "output" gates, each (T, U). ``joiner``
    goes between tokens to show them as text ("" when tokens carry their own spaces).
    """

    tokens: list[str]
    attention: np.ndarray | None
    cells: np.ndarray
    units: list[int]
    probabilities: dict[str, float]
    joiner: str
    gates: dict[str, np.ndarray]
