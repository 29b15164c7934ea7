"""The simple baselines every classifier is reported beside, fitted on the same split.

- text: TF-IDF of word unigrams and bigrams (sublinear term frequency) + logistic
  regression, scikit-learn's standard strong baseline for sentiment;
- numbers: 1-nearest-neighbour, Euclidean distance on the raw series. Series of
  unequal length are first resampled (linear interpolation) to the longest training
  length, so two series are compared shape against shape.

A fitted baseline is kept in the run directory as arrays (``baseline.safetensors``)
and JSON (``baseline.json``), never pickled, so ``evaluate`` can score it on new data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit.io.files import atomic_write_json
from lstmkit.io.rundir import FinishedRun
from lstmkit.io.weights import save_weights

BASELINE_ARRAYS = "baseline.safetensors"
BASELINE_JSON = "baseline.json"
# every word counts, one-letter words too (scikit-learn's default pattern drops them: a
# text of one-letter words, or of CJK characters split by spaces, would have no features)
_TFIDF_OPTIONS = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1,
                  "token_pattern": r"(?u)\b\w+\b"}


class TextBaseline:
    """TF-IDF + logistic regression over class indices 0 .. C - 1."""

    name = "tfidf_logreg"
    description = "TF-IDF (word 1-2 grams) + logistic regression"

    def __init__(self, vectorizer: Any, regression: Any) -> None:
        self.vectorizer, self.regression = vectorizer, regression

    @classmethod
    def fit(cls, texts: list[str], targets: np.ndarray, seed: int = 0) -> TextBaseline:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(**_TFIDF_OPTIONS)
        features = vectorizer.fit_transform(texts)
        regression = LogisticRegression(max_iter=2000, random_state=seed)
        regression.fit(features, targets)
        return cls(vectorizer, regression)

    def predict_proba(self, texts: list[str], num_classes: int) -> np.ndarray:
        """(N, num_classes); a class absent from the baseline's training split gets 0."""
        scores = self.regression.predict_proba(self.vectorizer.transform(texts))
        probabilities = np.zeros((len(texts), num_classes))
        probabilities[:, self.regression.classes_] = scores
        return probabilities

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        terms = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        arrays = {"idf": self.vectorizer.idf_, "coef": self.regression.coef_,
                  "intercept": self.regression.intercept_,
                  "classes": self.regression.classes_}
        return arrays, {"terms": terms}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> TextBaseline:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        # a fitted scikit-learn model is its learned arrays: set them, nothing to refit
        vectorizer = TfidfVectorizer(**_TFIDF_OPTIONS)
        vectorizer.vocabulary_ = {term: k for k, term in enumerate(info["terms"])}
        vectorizer.idf_ = arrays["idf"]
        regression = LogisticRegression()
        regression.coef_, regression.intercept_ = arrays["coef"], arrays["intercept"]
        regression.classes_ = arrays["classes"]
        return cls(vectorizer, regression)


class NearestNeighbourBaseline:
    """1-NN with Euclidean distance on raw series resampled to one length."""

    name = "1nn_euclidean"
    description = "1-nearest-neighbour, Euclidean distance on the raw series"

    def __init__(self, series: np.ndarray, targets: np.ndarray) -> None:
        self.series = series  # (N, L, F): the training series, resampled to one length
        self.targets = targets  # (N,)

    @classmethod
    def fit(cls, sequences: list[np.ndarray], targets: np.ndarray,
            seed: int = 0) -> NearestNeighbourBaseline:
        length = max(len(s) for s in sequences)
        return cls(resample_all(sequences, length), np.asarray(targets))

    def predict_proba(self, sequences: list[np.ndarray], num_classes: int) -> np.ndarray:
        """(N, num_classes): probability 1 on the nearest training series' class."""
        queries = resample_all(sequences, self.series.shape[1])
        nearest = nearest_neighbours(queries, self.series)
        probabilities = np.zeros((len(sequences), num_classes))
        probabilities[np.arange(len(sequences)), self.targets[nearest]] = 1.0
        return probabilities

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"series": self.series, "targets": self.targets}, {}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray],
                    info: dict[str, Any]) -> NearestNeighbourBaseline:
        return cls(arrays["series"], arrays["targets"])


Baseline = TextBaseline | NearestNeighbourBaseline
_KINDS = {TextBaseline.name: TextBaseline, NearestNeighbourBaseline.name: NearestNeighbourBaseline}


def resample_all(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """Each (T_i, F) series linearly interpolated to ``length`` steps: (N, L, F)."""
    grid = np.linspace(0.0, 1.0, length)
    resampled = []
    for series in sequences:
        if len(series) == length:
            resampled.append(series)
            continue
        position = np.linspace(0.0, 1.0, len(series)) if len(series) > 1 else np.zeros(1)
        columns = [np.interp(grid, position, series[:, f]) for f in range(series.shape[1])]
        resampled.append(np.stack(columns, axis=1))
    return np.asarray(resampled, dtype=np.float64)


def nearest_neighbours(queries: np.ndarray, references: np.ndarray,
                       chunk: int = 1024) -> np.ndarray:
    """Index of the reference (N, L, F) nearest (Euclidean) to each query (M, L, F)."""
    queries = queries.reshape(len(queries), -1)  # (M, L * F)
    references = references.reshape(len(references), -1)  # (N, L * F)
    reference_norms = (references ** 2).sum(axis=1)
    found = []
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        # |q - r|^2 = |q|^2 - 2 q.r + |r|^2; |q|^2 is the same for every r, so drop it
        distances = reference_norms[None, :] - 2.0 * block @ references.T
        found.append(distances.argmin(axis=1))
    return np.concatenate(found)


def save_baseline(run_dir: str | Path, baseline: Baseline) -> None:
    arrays, info = baseline._state()
    save_weights(Path(run_dir) / BASELINE_ARRAYS,
                 {key: torch.from_numpy(np.ascontiguousarray(value))
                  for key, value in arrays.items()})
    atomic_write_json(Path(run_dir) / BASELINE_JSON, {"kind": baseline.name, **info})


def load_baseline(run: FinishedRun) -> Baseline | None:
    """The run's baseline, or None for a run directory that kept none."""
    if not run.has(BASELINE_JSON):
        return None
    info = run.json(BASELINE_JSON)
    arrays = {key: value.numpy() for key, value in run.weights(BASELINE_ARRAYS).items()}
    return _KINDS[info["kind"]]._from_state(arrays, info)
