"""A translation model's config: its data filters, vocabulary, network, training and
decoding, round-tripping through JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lstmkit.data.tokenizers import KINDS
from lstmkit.errors import LstmkitError, option_name
from lstmkit.nn.attention import SCORES
from lstmkit.tasks.lifecycle import JsonConfig, check_lstm_variants, check_share, check_whole
from lstmkit.train import TrainConfig

TASK = "translation"


def _default_training() -> TrainConfig:
    # batch_size counts tokens here: see TranslationConfig
    return TrainConfig(epochs=40, batch_size=2000, lr=2e-3, schedule="cosine",
                       warmup_steps=200, grad_clip=1.0, patience=4, shuffle=True)


@dataclass
class TranslationConfig(JsonConfig):
    """Everything that defines a translation model.

    Data: pairs with more than ``max_length`` tokens on either side, or whose token
    counts differ by more than ``max_length_ratio`` times, are left out of training;
    a single table is split by source sentence into ``validation_fraction`` and
    ``test_fraction`` (no source sentence in two parts). ``source_language`` and
    ``target_language`` (codes such as "en", "de") are checked when translating.

    Vocabulary: one ``tokenizer`` ("bpe": byte-level BPE, never an unknown; "word";
    "char") of ``vocab_size`` entries learnt on both sides together when
    ``shared_vocabulary`` (the source and target embeddings are then one matrix), else
    one per side.

    Network: a bidirectional LSTM encoder of ``encoder_layers`` (each direction
    ``hidden_size // 2`` units, so its states have ``hidden_size``), optionally
    ``self_attention_layers`` blocks of multi-head self-attention over its states; an
    LSTM decoder of ``decoder_layers`` with ``attention`` ("dot", "general",
    "additive") and, with ``input_feeding``, the previous attentional state fed back
    in. The output layer is the target embedding (tied). ``lstm`` holds lstmkit.nn.LSTM
    variants for both (e.g. {"layer_norm": true}). ``dropout`` acts on embeddings,
    between layers and on the attentional state; ``label_smoothing`` spreads that much
    of the target's probability over the vocabulary.

    Training: ``train.batch_size`` is the number of tokens in a batch (the longer side
    of its longest pair times its pairs); early stopping and the best epoch follow BLEU
    on at most ``validation_sentences`` validation pairs, decoded greedily. The weights
    at the ends of the last ``average_checkpoints`` epochs are averaged, and the average
    replaces the best epoch's weights where its validation BLEU is higher (0 or 1: off).

    Decoding: ``beam_size`` (1: greedy), ``length_penalty`` alpha of GNMT's
    ((5 + length) / 6) ** alpha, outputs at most ``max_output_ratio`` times the source
    length plus 10 tokens.
    """

    source_language: str | None = None
    target_language: str | None = None
    max_length: int = 100
    max_length_ratio: float = 3.0
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    tokenizer: str = "bpe"
    vocab_size: int | None = 4000
    shared_vocabulary: bool = True
    lowercase: bool = False
    embedding_dim: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    attention: str = "general"
    input_feeding: bool = True
    self_attention_layers: int = 0
    self_attention_heads: int = 4
    lstm: dict[str, Any] = field(default_factory=dict)
    dropout: float = 0.2
    label_smoothing: float = 0.1
    validation_sentences: int = 500
    average_checkpoints: int = 3
    beam_size: int = 5
    length_penalty: float = 1.0
    max_output_ratio: float = 2.0
    train: TrainConfig = field(default_factory=_default_training)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = TrainConfig(**self.train)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first option that is out of range."""
        if self.tokenizer not in KINDS:
            raise LstmkitError(f"unknown tokenizer {self.tokenizer!r}; choose one of "
                               f"{', '.join(KINDS)} (--tokenizer)")
        if self.attention not in SCORES:
            raise LstmkitError(f"unknown attention {self.attention!r}; choose one of "
                               f"{', '.join(SCORES)} (--attention)")
        for name in ("max_length", "embedding_dim", "hidden_size", "encoder_layers",
                     "decoder_layers", "self_attention_heads", "validation_sentences",
                     "beam_size"):
            check_whole(name, getattr(self, name), 1)
        check_whole("self_attention_layers", self.self_attention_layers, 0)
        check_whole("average_checkpoints", self.average_checkpoints, 0)
        if self.hidden_size % 2:
            raise LstmkitError(f"--hidden-size must be even (the encoder's two directions "
                               f"have half each), got {self.hidden_size}")
        if self.self_attention_layers and self.hidden_size % self.self_attention_heads:
            raise LstmkitError(f"--hidden-size {self.hidden_size} must be divisible by "
                               f"--self-attention-heads {self.self_attention_heads}")
        if self.vocab_size is not None:
            check_whole("vocab_size", self.vocab_size, 8)
        for name in ("validation_fraction", "test_fraction"):
            check_share(name, getattr(self, name), 0.5)
        for name in ("dropout", "label_smoothing"):
            check_share(name, getattr(self, name))
        for name in ("max_length_ratio", "max_output_ratio"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
                raise LstmkitError(f"{option_name(name)} must be a number of at least 1, got "
                                   f"{value!r}")
        if not (math.isfinite(self.length_penalty) and self.length_penalty >= 0):
            raise LstmkitError(f"--length-penalty must be 0 or more, got {self.length_penalty}")
        check_lstm_variants(self.lstm)
        self.train.validate()

