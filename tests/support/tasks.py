"""Every task's tiny model and data, for the lifecycle tests (one place to add a task)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TASKS = ("forecast", "classify", "lm", "experiment", "translate", "speech", "finance")


def price_frame(days: int = 420, assets: int = 2, seed: int = 0) -> pd.DataFrame:
    """Daily OHLCV prices of ``assets`` random-walk assets on business days, in the long
    layout (date, symbol, open, high, low, close, volume), volatility clustering in."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=days)
    frames = []
    for k in range(assets):
        volatility = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, days)).clip(-1, 1))
        returns = rng.normal(0.0003, 1, days) * volatility
        close = 100 * np.exp(np.cumsum(returns))
        open_ = close * np.exp(rng.normal(0, 0.3, days) * volatility)
        spread = np.abs(rng.normal(0, 1, days)) * volatility * close
        frames.append(pd.DataFrame({
            "date": dates.strftime("%Y-%m-%d"), "symbol": f"A{k}", "open": open_,
            "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
            "close": close, "volume": rng.integers(1_000, 10_000, days)}))
    return pd.concat(frames, ignore_index=True)


def write_data(task: str, folder: Path) -> None:
    """The task's small data set, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if task == "forecast":
        months = pd.date_range("2010-01-01", periods=72, freq="MS")
        t = np.arange(72)
        sales = 100 + t + 10 * np.sin(2 * np.pi * t / 12)
        pd.DataFrame({"month": months, "sales": sales}).to_csv(folder / "data.csv", index=False)
    elif task == "classify":
        rng = random.Random(0)
        words = "the a cat dog sat ran on mat big small red".split()
        rows = []
        for _ in range(80):
            text = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            positive = rng.random() < 0.5
            if positive:
                text.insert(0, "great")
            rows.append({"text": " ".join(text), "label": "pos" if positive else "neg"})
        pd.DataFrame(rows).to_csv(folder / "data.csv", index=False)
    elif task == "lm":
        rng = random.Random(0)
        lines = [f"def {rng.choice('abcd')}({rng.choice('xyz')}):\n    return {rng.randint(0, 9)}\n"
                 for _ in range(150)]
        (folder / "data.txt").write_text("".join(lines), encoding="utf-8")
    elif task == "translate":
        from number_words import write_tsv

        write_tsv(folder / "pairs.tsv", count=300)
    elif task == "finance":
        price_frame().to_csv(folder / "prices.csv", index=False)
    elif task == "speech":
        from tone_speech import write_tone_corpus

        write_tone_corpus(folder, count=40)


def make_task(task: str, folder: Path, variant: int = 0,
              dropout: bool = True) -> tuple[Any, Any, dict[str, Any]]:
    """(an untrained model, its data, fit's options); ``variant`` changes the seed.

    Without ``dropout`` no random masks are drawn: N processes draw other masks than one
    process does (equal in distribution, not in value), so the comparison of N processes
    with one turns dropout off.
    """
    from lstmkit.train import TrainConfig

    if task == "forecast":
        from lstmkit.forecast import ForecastConfig, Forecaster

        config = ForecastConfig(target="sales", time="month", horizon=6, window=12, steps=150,
                                hidden_size=8, ensemble=2, seed=variant, progress=False)
        return Forecaster(config), folder / "data.csv", {"holdout": 6, "report": False}
    if task == "classify":
        from lstmkit.classify import Classifier, ClassifierConfig

        train = TrainConfig(epochs=4, batch_size=16, lr=0.02, patience=None, seed=variant,
                            progress=False)
        config = ClassifierConfig(embedding_dim=8, hidden_size=8, train=train,
                                  dropout=0.2 if dropout else 0.0)
        return Classifier(config), folder / "data.csv", {}
    if task == "lm":
        from lstmkit.lm import LanguageModel, LanguageModelConfig

        train = TrainConfig(epochs=3, batch_size=4, lr=1e-2, schedule="cosine", patience=None,
                            shuffle=False, seed=variant, progress=False)
        regularisers = {} if dropout else dict(
            embedding_dropout=0.0, input_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0,
            weight_drop=0.0)
        config = LanguageModelConfig(embedding_dim=8, hidden_size=16, num_layers=1, bptt=20,
                                     train=train, **regularisers)
        return LanguageModel(config), folder / "data.txt", {"cache_dir": folder / "cache"}
    if task == "experiment":
        from lstmkit.experiment import Experiment, ExperimentConfig

        config = ExperimentConfig(task="copy", length=10, hidden=8, steps=60, eval_every=20,
                                  seed=variant)
        return Experiment(config), None, {}
    if task == "translate":
        from lstmkit.translate import TranslationConfig, Translator

        train = TrainConfig(epochs=3, batch_size=300, lr=5e-3, warmup_steps=5, patience=None,
                            seed=variant, progress=False)
        config = TranslationConfig(tokenizer="word", vocab_size=None, embedding_dim=8,
                                   hidden_size=16, validation_sentences=20, beam_size=2,
                                   dropout=0.2 if dropout else 0.0,
                                   label_smoothing=0.1, train=train)
        return Translator(config), folder / "pairs.tsv", {}
    if task == "speech":
        from lstmkit.speech import Recogniser, SpeechConfig

        train = TrainConfig(epochs=3, batch_size=1500, lr=5e-3, patience=None, seed=variant,
                            progress=False)
        masks = 2 if dropout else 0  # SpecAugment draws its masks like dropout
        config = SpeechConfig(features={"n_mels": 20, "f_max": 4000.0}, hidden_size=12,
                              num_layers=1, stack=2, frequency_masks=masks,
                              frequency_mask_width=3, time_masks=masks, speeds=[1.1],
                              noise_snr_db=20.0 if dropout else None,
                              dropout=0.1 if dropout else 0.0, validation_utterances=8,
                              beam_size=2, train=train)
        return Recogniser(config), folder / "manifest.csv", {"cache_dir": folder / "cache"}
    if task == "finance":
        from lstmkit.finance import FinanceConfig, FinanceModel

        train = TrainConfig(epochs=3, batch_size=32, patience=None, seed=variant,
                            progress=False)
        config = FinanceConfig(target="volatility", window=10, hidden_size=4,
                               validation_days=40, train_days=0, train=train,
                               dropout=0.3 if dropout else 0.0)
        return FinanceModel(config), folder / "prices.csv", {}
    raise ValueError(task)


def weights_of(model: Any) -> dict[str, Any]:
    """Every trained tensor of a fitted or loaded model, by name."""
    # forecasters hold an ensemble, experiments a `model`, the others a `net`
    nets = getattr(model, "members", None) or [getattr(model, "net", None) or model.model]
    return {f"{k}.{name}": tensor for k, net in enumerate(nets)
            for name, tensor in net.state_dict().items()}
