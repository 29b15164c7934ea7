"""Language modelling: predict the next token of a text, measure it, generate from it.

    from lstmkit.lm import LanguageModel, LanguageModelConfig

    model = LanguageModel(LanguageModelConfig(tokenizer="char"))
    report = model.fit("stdlib", run_dir="runs/pylm")     # files, folders, or "stdlib"
    model.evaluate().bits_per_character                  # the corpus's test part
    model.generate("def ", max_tokens=200, temperature=0.8, seed=0)
    LanguageModel.load("runs/pylm")

The network (AWD-LSTM, Merity et al. 2017, on lstmkit.nn.LSTM):

    x_t = E'[token_t]             embedding; embedding dropout zeroes whole rows of E
    x_t = m_0 * x_t               locked dropout: one mask m per sequence, the same at every step
    h^k = LSTM_k(h^(k-1))         k = 1..L, weight drop (DropConnect) on each W_hh;
                                  locked dropout m_k between layers
    y_t = m_L * h^L_t             output dropout (locked)
    logits_t = E W y_t + b        tied: the output layer is the embedding matrix E (W: a
                                  linear map to the embedding size when sizes differ)
    loss = CE + alpha mean(y^2) + beta mean((h^L_t - h^L_(t-1))^2)    AR and TAR (training)

Training reads the corpus as ``batch_size`` contiguous streams, ``bptt`` tokens at a
time (lstmkit.data.token_stream); the state at the end of one batch, detached, starts
the next (truncated backpropagation through time).

Metrics: nats per token, perplexity exp(nats/token), and bits per character
= total nats / characters / ln 2, where characters are those of the text itself, so
character, word and BPE models compare on one scale.

A run directory holds ``config.json`` (task "language_model", the corpus it was
trained on), ``tokenizer.json``, ``model.safetensors``, ``metrics.json``, and the
training loop's checkpoint files and ``log.csv``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.data.token_stream import (
    STDLIB,
    ContiguousBatches,
    Corpus,
    TextSource,
    TokenStream,
    cached_stream,
    evaluation_windows,
    stream_length,
    take_characters,
)
from lstmkit.data.tokenizers import (
    KINDS,
    PAD_ID,
    TOKENIZER_FILE,
    UNK_ID,
    Tokenizer,
    VocabularyTokenizer,
    build_tokenizer,
    tokenizer_from_json,
)
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, read_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.nn import LSTM, record_gates
from lstmkit.nn.regularisation import dropout_mask
from lstmkit.tasks.lifecycle import Evaluation, Task, config_from_json
from lstmkit.train import TrainConfig, TrainResult, fit

logger = logging.getLogger("lstmkit.lm")

TASK = "language_model"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
UNIGRAM_FILE = "unigram.safetensors"
TOKENIZER_SAMPLE_CHARACTERS = 50_000_000
"""The tokenizer learns its vocabulary from at most this many characters of the
training part (the whole part for most corpora)."""

State = list[tuple[Tensor, Tensor]]
"""Per LSTM layer (h, c), each (1, B, size): what one batch hands to the next."""


def _default_training() -> TrainConfig:
    return TrainConfig(epochs=20, batch_size=32, lr=3e-3, schedule="cosine", warmup_steps=100,
                       grad_clip=1.0, patience=3, shuffle=False)


# --------------------------------------------------------------------------- config


@dataclass
class LanguageModelConfig:
    """Everything that defines a language model: its text, tokenizer, network, training.

    ``pattern`` picks the files inside folders; ``val_fraction`` and ``test_fraction``
    of the characters at the corpus's end are held out, in this order. ``vocab_size``
    caps the vocabulary (None: every piece seen ``min_count`` times; BPE: 2000).
    ``proj_size`` is the LSTM's projection (Sak et al. 2014); with ``tie_weights`` a
    linear map joins the LSTM's output to the embedding size when the two differ.
    Dropouts: ``embedding_dropout`` (whole vocabulary rows), ``input_dropout``,
    ``hidden_dropout`` and ``output_dropout`` (locked, on the embeddings, between
    layers, on the top layer's output), ``weight_drop`` (DropConnect on W_hh).
    ``activation_regularisation`` (AR, alpha) and ``temporal_activation_regularisation``
    (TAR, beta) penalise large and fast-changing top-layer outputs. ``bptt`` is the
    number of tokens per backpropagation window. ``train.shuffle`` must stay False:
    the batches of a stream must come in order.
    """

    tokenizer: str = "char"
    vocab_size: int | None = None
    min_count: int = 1
    lowercase: bool = False
    pattern: str = "*"
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    embedding_dim: int = 256
    hidden_size: int = 512
    num_layers: int = 2
    proj_size: int = 0
    tie_weights: bool = True
    embedding_dropout: float = 0.0
    input_dropout: float = 0.1
    hidden_dropout: float = 0.1
    output_dropout: float = 0.1
    weight_drop: float = 0.2
    activation_regularisation: float = 1.0
    temporal_activation_regularisation: float = 1.0
    bptt: int = 100
    train: TrainConfig = field(default_factory=_default_training)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = TrainConfig(**self.train)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first option that is out of range."""
        if self.tokenizer not in KINDS:
            raise LstmkitError(f"unknown tokenizer {self.tokenizer!r}; choose one of "
                               f"{', '.join(KINDS)}")
        for name in ("embedding_dim", "hidden_size", "num_layers", "bptt", "min_count"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise LstmkitError(f"{name} must be an integer of at least 1, got {value!r}")
        if not 0 <= self.proj_size < self.hidden_size:
            raise LstmkitError(f"proj_size must be 0 (off) or below hidden_size "
                               f"{self.hidden_size}, got {self.proj_size}")
        for name in ("embedding_dropout", "input_dropout", "hidden_dropout", "output_dropout",
                     "weight_drop"):
            if not 0 <= getattr(self, name) < 1:
                raise LstmkitError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        for name in ("activation_regularisation", "temporal_activation_regularisation"):
            if not getattr(self, name) >= 0:
                raise LstmkitError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.train.shuffle:
            raise LstmkitError("a language model reads contiguous streams whose batches must "
                               "stay in order: set train.shuffle=False")
        self.train.validate()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> LanguageModelConfig:
        return config_from_json(cls, state)


# --------------------------------------------------------------------------- the network


class LMOutput(NamedTuple):
    logits: Tensor  # (B, T, V)
    state: State
    hidden: Tensor  # (B, T, P) top layer's output (TAR acts on it)
    dropped: Tensor  # (B, T, P) the same after output dropout (AR acts on it)


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout (Gal & Ghahramani 2016): x (B, T, F), one mask per sequence."""
    if not training or p == 0.0:
        return x
    return x * dropout_mask((x.shape[0], 1, x.shape[2]), p, x)


def embed_with_dropout(embedding: nn.Embedding, tokens: Tensor, p: float,
                       training: bool) -> Tensor:
    """Embedding dropout: a dropped word loses its whole vector wherever it occurs."""
    weight = embedding.weight
    if training and p:
        weight = weight * dropout_mask((weight.shape[0], 1), p, weight)
    return F.embedding(tokens, weight)


class LanguageModelNet(nn.Module):
    """Embedding, stacked lstmkit.nn.LSTM layers, (projection), tied output layer.

    Each layer is its own one-layer LSTM so that locked dropout can act between
    layers; :meth:`stacked_lstm` returns them as one multi-layer LSTM.
    """

    def __init__(self, vocab_size: int, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        E, H, P = config.embedding_dim, config.hidden_size, config.proj_size
        output_size = P or H
        self.embedding = nn.Embedding(vocab_size, E)
        self.layers = nn.ModuleList(
            LSTM(E if k == 0 else output_size, H, proj_size=P, batch_first=True,
                 weight_drop=config.weight_drop)
            for k in range(config.num_layers)
        )
        tied = config.tie_weights
        self.projection = (nn.Linear(output_size, E) if tied and output_size != E
                           else nn.Identity())
        self.decoder = nn.Linear(E if tied else output_size, vocab_size)
        # the embedding keeps nn.Embedding's N(0, 1): AWD-LSTM's uniform(-0.1, 0.1) makes
        # the inputs (and tied logits) so small that early training crawls (stdlib chars,
        # 150 AdamW steps: 4.46 bits per character against 3.06)
        nn.init.zeros_(self.decoder.bias)
        if tied:
            self.decoder.weight = self.embedding.weight

    def forward(self, tokens: Tensor, state: State | None = None) -> LMOutput:
        """tokens (B, T) -> next-token logits (B, T, V) and the final state."""
        c = self.config
        x = embed_with_dropout(self.embedding, tokens, c.embedding_dropout, self.training)
        x = locked_dropout(x, c.input_dropout, self.training)  # (B, T, E)
        final: State = []
        for k, layer in enumerate(self.layers):
            x, layer_state = layer(x, None if state is None else state[k])
            final.append(layer_state)
            if k < len(self.layers) - 1:
                x = locked_dropout(x, c.hidden_dropout, self.training)
        dropped = locked_dropout(x, c.output_dropout, self.training)
        return LMOutput(self.decoder(self.projection(dropped)), final, x, dropped)

    def stacked_lstm(self) -> LSTM:
        """The layers as one multi-layer lstmkit.nn.LSTM (batch_first), same weights."""
        c = self.config
        lstm = LSTM(c.embedding_dim, c.hidden_size, num_layers=c.num_layers,
                    proj_size=c.proj_size, batch_first=True, dropout=c.hidden_dropout,
                    weight_drop=c.weight_drop)
        weights = {}
        for k, layer in enumerate(self.layers):
            for name, tensor in layer.state_dict().items():
                weights[name.replace("_l0", f"_l{k}")] = tensor  # weight_ih_l0 -> weight_ih_lk
        lstm.load_state_dict(weights)
        return lstm


def detach_state(state: State) -> State:
    """The state without its history: gradients stop at the batch boundary."""
    return [(h.detach(), c.detach()) for h, c in state]


class StreamLoss:
    """Next-token cross entropy with the state carried from batch to batch (TBPTT).

    Training and validation streams keep separate states, reset by the training loop
    at each epoch's start and before each validation. In training mode AR and TAR are
    added; in evaluation mode the loss is the plain cross entropy in nats per token.
    """

    def __init__(self, activation_regularisation: float = 0.0,
                 temporal_activation_regularisation: float = 0.0) -> None:
        self.alpha = activation_regularisation
        self.beta = temporal_activation_regularisation
        self.states: dict[bool, State | None] = {True: None, False: None}  # by model.training

    def on_epoch_start(self, epoch: int) -> None:
        self.states[True] = None

    def on_eval_start(self) -> None:
        self.states[False] = None

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, targets = batch  # (B, T) each
        output = model(inputs, self.states[model.training])
        self.states[model.training] = detach_state(output.state)
        loss = F.cross_entropy(output.logits.flatten(0, 1), targets.flatten())  # (B*T, V)
        if model.training and self.alpha:
            loss = loss + self.alpha * output.dropped.pow(2).mean()
        if model.training and self.beta:
            loss = loss + self.beta * (output.hidden[:, 1:] - output.hidden[:, :-1]).pow(2).mean()
        return loss


# --------------------------------------------------------------------------- metrics


@dataclass
class CrossEntropy:
    """Cross entropy of one text: ``nats`` summed over the ``predicted`` tokens.

    ``bits_per_character`` converts the mean to the text's ``characters``:
    nats/token x tokens/character / ln 2 (for a character model, the plain bits per
    token; the first token and the few at the end that fill no stream are not
    predicted, so the mean stands for them).
    """

    name: str
    tokens: int
    characters: int
    predicted: int
    nats: float

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.predicted

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    @property
    def bits_per_character(self) -> float:
        return self.nats_per_token * self.tokens / self.characters / math.log(2)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "nats_per_token": self.nats_per_token,
                "perplexity": self.perplexity, "bits_per_character": self.bits_per_character}

    def row(self) -> dict[str, float]:
        return {"perplexity": self.perplexity, "bits_per_character": self.bits_per_character,
                "nats_per_token": self.nats_per_token}


def unigram_counts(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each token occurs in ``tokens``: the baseline's whole model."""
    return np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)


def unigram_cross_entropy(counts: np.ndarray, tokens: np.ndarray, characters: int,
                          name: str) -> CrossEntropy:
    """The baseline: every token predicted by its training frequency (add-one smoothed),
    whatever came before it."""
    log_p = np.log(counts + 1.0) - np.log(counts.sum() + len(counts))
    targets = np.asarray(tokens[1:], dtype=np.int64)
    return CrossEntropy(name, len(tokens), characters, len(targets), float(-log_p[targets].sum()))


def evaluation_of(model: CrossEntropy, unigram: CrossEntropy | None) -> Evaluation:
    """The model's cross entropy beside the unigram baseline's, as one Evaluation."""
    rows = {"model": model.row()}
    if unigram is not None:
        rows["unigram"] = unigram.row()
    return Evaluation(
        task=TASK, data=f"{model.name}: {model.tokens:,} tokens, {model.characters:,} characters",
        rows=rows, labels={"model": "lstmkit LSTM", "unigram": "unigram (token frequencies)"},
        lower_is_better=["perplexity", "bits_per_character", "nats_per_token"],
        notes=["bits_per_character: total nats over the characters of the text / ln 2, so "
               "models with different tokenizers compare"],
        details={"model": asdict(model), "unigram": None if unigram is None else asdict(unigram)})


def stream_nats(net: nn.Module, tokens: np.ndarray, batch_size: int = 16,
                bptt: int = 200) -> tuple[float, int]:
    """(total nats, tokens predicted) of ``net`` on ``tokens``, read as ``batch_size``
    streams with the state carried across windows."""
    device = next(net.parameters()).device
    batch_size = min(batch_size, len(tokens) - 1)
    was_training = net.training
    net.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for inputs, targets in evaluation_windows(tokens, batch_size, bptt):
            output = net(inputs.to(device), state)
            state = output.state
            total += float(F.cross_entropy(output.logits.flatten(0, 1),
                                           targets.to(device).flatten(), reduction="sum"))
            count += targets.numel()
    net.train(was_training)
    return total, count


def evaluate_part(net: nn.Module, stream: TokenStream, part: str, name: str | None = None,
                  batch_size: int = 16) -> CrossEntropy | None:
    """The :class:`CrossEntropy` of one part of a stream (None when it has under 2 tokens)."""
    tokens = stream.part(part)
    if len(tokens) < 2:
        return None
    nats, predicted = stream_nats(net, tokens, batch_size)
    return CrossEntropy(name or part, len(tokens), stream.characters[part], predicted, nats)


# --------------------------------------------------------------------------- generation


def check_sampling(temperature: float, top_k: int | None, top_p: float | None,
                   max_tokens: int) -> None:
    if not temperature > 0:
        raise LstmkitError(f"temperature must be above 0, got {temperature}; use a small "
                           "value such as 0.1 or top_k=1 for (nearly) greedy text")
    if top_k is not None and top_k < 1:
        raise LstmkitError(f"top_k must be at least 1 (1 is greedy), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise LstmkitError(f"top_p must lie in (0, 1], got {top_p}")
    if max_tokens < 1:
        raise LstmkitError(f"max_tokens must be at least 1, got {max_tokens}")


def next_token_probabilities(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                             top_p: float | None = None) -> Tensor:
    """(V,) logits -> (V,) probabilities to sample from: logits / temperature, only the
    ``top_k`` likeliest tokens, only the smallest set whose mass reaches ``top_p``."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probabilities = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        ranked, order = probabilities.sort(descending=True)
        mass_before = ranked.cumsum(0) - ranked
        ranked = ranked.masked_fill(mass_before >= top_p, 0.0)
        probabilities = torch.zeros_like(probabilities).scatter(0, order, ranked)
        probabilities = probabilities / probabilities.sum()
    return probabilities


def _stop_prefix_length(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that may be the start of ``stop``."""
    for k in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:k]):
            return k
    return 0


# --------------------------------------------------------------------------- the model


@dataclass
class FitReport:
    """What :meth:`LanguageModel.fit` did, and the held-out parts' metrics."""

    result: TrainResult
    validation: Evaluation | None
    test: Evaluation | None
    tokens_trained: int
    tokens_per_second: float  # training throughput, validation passes included

    def summary(self) -> str:
        lines = [f"trained {self.result.steps} steps ({self.tokens_trained:,} tokens, "
                 f"{self.tokens_per_second:,.0f} tokens/s), stopped: {self.result.stop_reason}"]
        lines += [e.table() for e in (self.validation, self.test) if e is not None]
        return "\n".join(lines)


@dataclass
class PretrainedEncoder:
    """A language model's lower half, for a classifier to start from (ULMFiT).

    ``lstm`` is one multi-layer, unidirectional, batch_first lstmkit.nn.LSTM holding
    the language model's layers; ``config`` has its sizes: vocab_size, embedding_dim,
    hidden_size, num_layers, proj_size, tokenizer.
    """

    tokenizer: Tokenizer
    embedding: nn.Embedding
    lstm: LSTM
    config: dict[str, Any]


class LanguageModel(Task):
    """A tokenizer and a :class:`LanguageModelNet`, trained on a corpus of text files."""

    task = TASK

    def __init__(self, config: LanguageModelConfig | None = None) -> None:
        self.config = config or LanguageModelConfig()
        self.tokenizer: Tokenizer | None = None
        self.net: LanguageModelNet | None = None
        self.corpus: dict[str, Any] | None = None  # sources, pattern, fingerprint
        self.unigram: np.ndarray | None = None  # training token counts: the baseline
        self.metrics: dict[str, Any] = {}

    # ---------------------------------------------------------------- training

    def fit(self, text: TextSource = STDLIB, run_dir: str | Path | None = None, *,
            resume: bool = False, overwrite: bool = False,
            cache_dir: str | Path | None = None) -> FitReport:
        """Learn the tokenizer and the network from ``text`` (files, folders or "stdlib").

        With ``run_dir`` the run directory is written by the lifecycle's rules (see
        lstmkit.tasks.lifecycle); ``resume`` continues an interrupted run.
        """
        return super().fit(text, run_dir, resume=resume, overwrite=overwrite,
                           cache_dir=cache_dir)

    def _fit(self, text: TextSource, run: Run | None, started: float,
             cache_dir: str | Path | None = None) -> FitReport:
        config = self.config
        config.validate()
        resumed = run is not None and run.resumed
        corpus = Corpus.scan(text, config.pattern, config.val_fraction, config.test_fraction)
        if resumed:  # the tokenizer the run started with, not one learnt again
            self.tokenizer = tokenizer_from_json(read_json(run.work / TOKENIZER_FILE))
        else:
            self.tokenizer = build_tokenizer(
                config.tokenizer,
                take_characters(corpus.part_texts("train"), TOKENIZER_SAMPLE_CHARACTERS),
                vocab_size=config.vocab_size, min_count=config.min_count,
                lowercase=config.lowercase)
        stream = cached_stream(corpus, self.tokenizer, cache_dir)
        train_set, val_set = self._datasets(stream)
        self.corpus = {"sources": _source_names(text), "pattern": config.pattern,
                       "fingerprint": corpus.fingerprint()}
        if run is not None and run.writer and not resumed:
            self.tokenizer.save(run.work / TOKENIZER_FILE)
        torch.manual_seed(config.train.seed)
        self.net = LanguageModelNet(self.tokenizer.vocab_size, config)
        loss = StreamLoss(config.activation_regularisation,
                          config.temporal_activation_regularisation)
        started = time.monotonic()
        result = fit(self.net, train_set, loss, config.train, val_data=val_set,
                     run_dir=None if run is None else run.work, resume=resumed,
                     started=started, final_passes=2)  # then validation and test parts
        seconds = time.monotonic() - started
        tokens_trained = result.steps * config.train.batch_size * train_set.bptt
        self.unigram = unigram_counts(stream.part("train"), self.tokenizer.vocab_size)
        validation, test = (self._evaluate_stream(stream, part) for part in ("val", "test"))
        self.net.to("cpu")
        report = FitReport(result, validation, test, tokens_trained,
                           tokens_trained / max(seconds, 1e-9))
        self.metrics = {
            "validation": validation.to_json() if validation else None,
            "test": test.to_json() if test else None,
            "training": {"steps": result.steps, "tokens": tokens_trained,
                         "seconds": seconds, "tokens_per_second": report.tokens_per_second,
                         "stop_reason": result.stop_reason, "best_epoch": result.best_epoch},
            "corpus": {"files": len(corpus.files), "characters": stream.characters,
                       "tokens": {part: stop - start
                                  for part, (start, stop) in stream.parts.items()}},
        }
        return report

    def _evaluate_stream(self, stream: TokenStream, part: str, name: str | None = None,
                         batch_size: int = 16) -> Evaluation | None:
        model = evaluate_part(self.net, stream, part, name, batch_size)
        if model is None:
            return None
        unigram = (None if self.unigram is None else unigram_cross_entropy(
            self.unigram, stream.part(part), stream.characters[part], model.name))
        return evaluation_of(model, unigram)

    def _datasets(self, stream: TokenStream) -> tuple[ContiguousBatches, ContiguousBatches | None]:
        batch_size, bptt = self.config.train.batch_size, self.config.bptt
        train = stream.part("train")
        needed = batch_size * bptt + 1
        if len(train) < needed:
            raise LstmkitError(
                f"the corpus is smaller than one batch: its training part has {len(train):,} "
                f"tokens, one batch needs batch_size x bptt + 1 = {batch_size} x {bptt} + 1 = "
                f"{needed:,}; give more text or lower --batch-size or --bptt"
            )
        val = stream.part("val")
        if self.config.val_fraction == 0:
            return ContiguousBatches(train, batch_size, bptt), None
        if stream_length(len(val), batch_size) < 1:
            raise LstmkitError(
                f"the validation part has {len(val)} tokens, too few for {batch_size} streams; "
                "give more text, raise --val-fraction, or pass --val-fraction 0"
            )
        return ContiguousBatches(train, batch_size, bptt), ContiguousBatches(val, batch_size, bptt)

    # ---------------------------------------------------------------- measuring

    def evaluate(self, text: TextSource | None = None, part: str = "test",
                 batch_size: int = 16, cache_dir: str | Path | None = None) -> Evaluation:
        """Perplexity and bits per character on ``text`` (all of it), or by default on
        ``part`` ("val" or "test") of the corpus the model was trained on."""
        net, tokenizer = self._require_model()
        if text is None:
            if part not in ("val", "test"):
                raise LstmkitError(f"part must be 'val' or 'test', got {part!r}")
            corpus, name = self._training_corpus(), part
        else:
            corpus = Corpus.scan(text, self.config.pattern, 0.0, 0.0)
            part, name = "train", "text"  # without held-out fractions everything is "train"
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise LstmkitError(f"--batch-size must be a whole number of at least 1, got "
                               f"{batch_size!r}")
        evaluation = self._evaluate_stream(cached_stream(corpus, tokenizer, cache_dir), part,
                                           name, batch_size)
        if evaluation is None:
            raise LstmkitError(f"the {name} part holds fewer than 2 tokens; nothing to predict")
        return evaluation

    def held_out_text(self, characters: int, part: str = "test") -> str:
        """The first ``characters`` of a held-out part of the training corpus."""
        return "".join(take_characters(self._training_corpus().part_texts(part), characters))

    def _training_corpus(self) -> Corpus:
        """The corpus the model was trained on, checked to be unchanged since."""
        if self.corpus is None:
            raise LstmkitError("the model does not know its training corpus; pass a text")
        corpus = Corpus.scan(self.corpus["sources"], self.corpus["pattern"],
                             self.config.val_fraction, self.config.test_fraction)
        if corpus.fingerprint() != self.corpus["fingerprint"]:
            raise LstmkitError(
                "the training corpus changed since the model was trained (files added, "
                "removed or modified), so its held-out part is no longer known; pass a text "
                "to use instead"
            )
        return corpus

    # ---------------------------------------------------------------- generating

    def stream(self, prompt: str, max_tokens: int = 200, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               stop: str | None = None) -> Iterator[str]:
        """Generate after ``prompt``, yielding the new text piece by piece as it comes.

        Ends after ``max_tokens`` tokens or before the first ``stop`` string (which is
        not yielded). The same ``seed`` gives the same text. Pieces of the prompt the
        vocabulary lacks are read as unknown, with a warning.
        """
        net, tokenizer = self._require_model()
        check_sampling(temperature, top_k, top_p, max_tokens)
        prompt_ids = self._encode_prompt(prompt)
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        prompt_text = tokenizer.decode(prompt_ids)
        generated: list[int] = []
        emitted = 0  # characters of the new text already yielded
        net.eval()
        with torch.no_grad():
            output = net(torch.tensor([prompt_ids]))
            for _ in range(max_tokens):
                logits = output.logits[0, -1].clone()  # (V,)
                logits[PAD_ID] = float("-inf")  # padding never occurs in a stream
                probabilities = next_token_probabilities(logits, temperature, top_k, top_p)
                token = int(torch.multinomial(probabilities, 1, generator=generator))
                generated.append(token)
                # decode with the prompt: word spacing and BPE bytes join up correctly
                text = tokenizer.decode(prompt_ids + generated)[len(prompt_text):]
                if stop and stop in text:
                    yield text[emitted:text.index(stop)]
                    return
                ready = len(text) - (_stop_prefix_length(text, stop) if stop else 0)
                if ready > emitted:
                    yield text[emitted:ready]
                    emitted = ready
                output = net(torch.tensor([[token]]), output.state)
        if len(text) > emitted:
            yield text[emitted:]

    def generate(self, prompt: str, max_tokens: int = 200, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop: str | None = None, on_text: Callable[[str], None] | None = None) -> str:
        """The text generated after ``prompt`` (see :meth:`stream`); ``on_text`` receives
        each piece as it is produced."""
        pieces = []
        for piece in self.stream(prompt, max_tokens, temperature, top_k, top_p, seed, stop):
            if on_text is not None:
                on_text(piece)
            pieces.append(piece)
        return "".join(pieces)

    def _encode_prompt(self, prompt: str) -> list[int]:
        _, tokenizer = self._require_model()
        ids = tokenizer.encode(prompt)
        if not ids:
            raise LstmkitError("the prompt is empty; give at least one character to start from")
        unknown = ids.count(UNK_ID)
        if unknown:
            pieces = (tokenizer.split(prompt) if isinstance(tokenizer, VocabularyTokenizer)
                      else tokenizer.tokens(prompt))
            missing = sorted({p for p, i in zip(pieces, ids) if i == UNK_ID})
            logger.warning("the prompt has %d piece(s) the vocabulary lacks (%s); they are "
                           "read as %s", unknown, ", ".join(map(repr, missing)),
                           tokenizer.id_to_token(UNK_ID))
        return ids

    # ---------------------------------------------------------------- inspecting

    def cell_activations(self, text: str, layer: int = -1) -> tuple[list[str], np.ndarray]:
        """The pieces of ``text`` as the model reads them, and tanh(c_t) of every unit of
        LSTM ``layer`` after each: (pieces, array (T, H))."""
        net, tokenizer = self._require_model()
        if not -len(net.layers) <= layer < len(net.layers):
            raise LstmkitError(f"layer {layer} does not exist; the model has "
                               f"{len(net.layers)} layer(s): 0 .. {len(net.layers) - 1}")
        ids = tokenizer.encode(text)
        if not ids:
            raise LstmkitError("the text to inspect is empty")
        pieces = list(text) if tokenizer.kind == "char" else tokenizer.tokens(text)
        net.eval()
        with torch.no_grad(), record_gates(net.layers[layer]) as trace:
            net(torch.tensor([ids]))
        cells = trace.last[0]["c"][0]  # batch_first (1, T, H) -> (T, H)
        return pieces, torch.tanh(cells).numpy()

    # ---------------------------------------------------------------- saving

    def _write(self, directory: Path) -> None:
        net, tokenizer = self._require_model()
        write_config(directory, TASK, {"language_model": self.config.to_json(),
                                       "vocab_size": tokenizer.vocab_size,
                                       "corpus": self.corpus})
        tokenizer.save(directory / TOKENIZER_FILE)
        save_weights(directory / MODEL_FILE, net.state_dict())
        if self.unigram is not None:
            save_weights(directory / UNIGRAM_FILE, {"counts": torch.from_numpy(self.unigram)})
        atomic_write_json(directory / METRICS_FILE, self.metrics)

    @classmethod
    def _read(cls, run: FinishedRun) -> LanguageModel:
        saved = run.config
        model = cls(LanguageModelConfig.from_json(saved["language_model"]))
        model.tokenizer = tokenizer_from_json(run.json(TOKENIZER_FILE))
        model.corpus = saved["corpus"]
        weights = run.weights(MODEL_FILE, lambda: LanguageModelNet(model.tokenizer.vocab_size,
                                                                   model.config))
        model.net = LanguageModelNet(model.tokenizer.vocab_size, model.config)
        model.net.load_state_dict(weights)
        if run.has(UNIGRAM_FILE):
            model.unigram = run.weights(UNIGRAM_FILE)["counts"].numpy()
        model.metrics = run.json(METRICS_FILE) if run.has(METRICS_FILE) else {}
        return model

    def pretrained_encoder(self) -> PretrainedEncoder:
        """The tokenizer, embedding and LSTM layers, for a classifier to fine-tune."""
        net, tokenizer = self._require_model()
        c = self.config
        return PretrainedEncoder(
            tokenizer=tokenizer,
            embedding=nn.Embedding.from_pretrained(net.embedding.weight.detach().clone(),
                                                   freeze=False),
            lstm=net.stacked_lstm(),
            config={"vocab_size": tokenizer.vocab_size, "embedding_dim": c.embedding_dim,
                    "hidden_size": c.hidden_size, "num_layers": c.num_layers,
                    "proj_size": c.proj_size, "tokenizer": c.tokenizer},
        )

    def _require_model(self) -> tuple[LanguageModelNet, Tokenizer]:
        if self.net is None or self.tokenizer is None:
            raise LstmkitError("the language model is not trained: call fit or load a run first")
        return self.net, self.tokenizer


def pretrained_encoder(run_dir: str | Path) -> PretrainedEncoder:
    """The encoder of the language model in ``run_dir`` (see :class:`PretrainedEncoder`)."""
    return LanguageModel.load(run_dir).pretrained_encoder()


# --------------------------------------------------------------------------- helpers


def _source_names(text: TextSource) -> list[str]:
    """Sources as they will be found again: absolute paths, or "stdlib"."""
    sources = [text] if isinstance(text, (str, os.PathLike)) else list(text)
    return [STDLIB if str(s) == STDLIB else str(Path(s).resolve()) for s in sources]
