"""A classifier's config: its data, tokenizer, network and training, round-tripping
through JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lstmkit.errors import LstmkitError, option_name
from lstmkit.tasks.classify.network import POOLINGS
from lstmkit.tasks.lifecycle import JsonConfig, check_whole
from lstmkit.train import TrainConfig

DATA_KINDS = ("text", "numbers")
MIN_EPOCHS_DIVISOR = 5
"""The default floor under early stopping is this fraction (1/5) of the epochs: long
enough for a small set's model to leave its first guess (the class prior), short enough
that patience still saves most of a run that has stopped improving."""


@dataclass
class ClassifierConfig(JsonConfig):
    """Everything that defines a classifier: its data, tokenizer, network and training.

    ``data`` is "text" (``text_column``) or "numbers" (``value_columns``, long layout
    when ``id_column`` is set, else one row per sequence; ``frame_length`` consecutive
    steps are stacked into one LSTM input, which shortens long series that many times
    and eases learning from them). ``max_length`` truncates
    texts to their first tokens. ``dropout`` acts on embeddings and on the pooled
    summary, ``lstm_dropout`` between LSTM layers; ``lstm_options`` are further
    keyword arguments of lstmkit.nn.LSTM (its variants: peephole, layer_norm, zoneout,
    recurrent_dropout, weight_drop, forget_bias, backend). ``class_weights`` weighs the
    loss by inverse class frequency. ``val_fraction`` of the training data (stratified,
    at least 2 examples of each class that can spare them: see
    lstmkit.tasks.classify.data.stratified_split) is held out for early stopping and the
    reported metrics when no validation data is given. ``from_lm`` is a language-model
    run directory to start from (text only).

    Small data: ``min_epochs`` is the floor under early stopping. Up to that epoch the
    latest weights count as the best, so neither ``train.patience`` nor the best epoch
    can go back to a model that has not learned yet; None (the default) is a fifth of
    ``train.epochs``, rounded up (10 of the default 50), so the floor grows with the run
    it guards; 0 lets the validation loss decide from epoch 1. A training part smaller
    than 4 batches is trained in batches of a quarter of it (``train.batch_size`` at
    most), so every epoch takes at least 4 optimizer steps rather than one.
    """

    data: str = "text"
    text_column: str = "text"
    label_column: str = "label"
    value_columns: list[str] = field(default_factory=lambda: ["value"])
    id_column: str | None = None
    step_column: str | None = None
    frame_length: int = 1
    tokenizer: str = "word"
    vocab_size: int | None = 20000
    min_count: int = 1
    lowercase: bool = True
    max_length: int = 256
    embedding_dim: int = 100
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "attention"
    dropout: float = 0.2
    lstm_dropout: float = 0.0
    proj_size: int = 0
    lstm_options: dict[str, Any] = field(default_factory=dict)
    class_weights: bool = False
    val_fraction: float = 0.1
    min_epochs: int | None = None
    from_lm: str | None = None
    lr_decay: float = 2.6
    gradual_unfreeze: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = TrainConfig(**self.train)
        self.value_columns = list(self.value_columns)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first option that is out of range."""
        if self.data not in DATA_KINDS:
            raise LstmkitError(f"--kind must be one of {', '.join(DATA_KINDS)}, got {self.data!r}")
        if self.pooling not in POOLINGS:
            raise LstmkitError(
                f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        for name in ("max_length", "embedding_dim", "hidden_size", "num_layers",
                     "frame_length"):
            if getattr(self, name) < 1:
                raise LstmkitError(f"{option_name(name)} must be at least 1"
                                   f", got {getattr(self, name)}")
        for name in ("dropout", "lstm_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise LstmkitError(f"{option_name(name)} must lie in [0, 1)"
                                   f", got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise LstmkitError(f"--val-fraction must lie in [0, 1), got {self.val_fraction}")
        if self.min_epochs is not None:
            check_whole("min_epochs", self.min_epochs, 0)
        if not 0 <= self.proj_size < self.hidden_size:
            raise LstmkitError(
                f"proj_size must be 0 (off) or below hidden_size {self.hidden_size}, "
                f"got {self.proj_size}")
        if self.lr_decay < 1:
            raise LstmkitError(f"--lr-decay divides each lower layer's rate: at least 1, "
                               f"got {self.lr_decay}")
        if self.from_lm is not None and self.data != "text":
            raise LstmkitError("--from-lm starts from a language model: text only")

    def early_stopping_floor(self) -> int:
        """The epoch up to which early stopping and the best epoch wait: ``min_epochs``,
        or a fifth of ``train.epochs`` (rounded up) when it is None."""
        if self.min_epochs is not None:
            return self.min_epochs
        return math.ceil(self.train.epochs / MIN_EPOCHS_DIVISOR)

    def lstm_arguments(self) -> dict[str, Any]:
        """lstmkit.nn.LSTM's constructor arguments, input size left to the network."""
        return {
            "hidden_size": self.hidden_size, "num_layers": self.num_layers,
            "dropout": self.lstm_dropout, "bidirectional": self.bidirectional,
            "proj_size": self.proj_size, **self.lstm_options,
        }
