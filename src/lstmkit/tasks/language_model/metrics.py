"""How well a language model predicts a text: cross entropy in nats per token, perplexity
and bits per character, beside the unigram baseline."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lstmkit.data.token_stream import TokenStream, evaluation_windows
from lstmkit.tasks.language_model.config import TASK
from lstmkit.tasks.lifecycle import Evaluation


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
