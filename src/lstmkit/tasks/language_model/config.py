"""A language model's config: its text, tokenizer, network and training, round-tripping
through JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from lstmkit.data.tokenizers import KINDS
from lstmkit.errors import LstmkitError, option_name
from lstmkit.tasks.lifecycle import JsonConfig
from lstmkit.train import TrainConfig

TASK = "language_model"


def _default_training() -> TrainConfig:
    return TrainConfig(epochs=20, batch_size=32, lr=3e-3, schedule="cosine", warmup_steps=100,
                       grad_clip=1.0, patience=3, shuffle=False)


@dataclass
class LanguageModelConfig(JsonConfig):
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
                raise LstmkitError(f"{option_name(name)} must be an integer of at least 1"
                                   f", got {value!r}")
        if not 0 <= self.proj_size < self.hidden_size:
            raise LstmkitError(f"--proj-size must be 0 (off) or below --hidden-size "
                               f"{self.hidden_size}, got {self.proj_size}")
        for name in ("embedding_dropout", "input_dropout", "hidden_dropout", "output_dropout",
                     "weight_drop"):
            if not 0 <= getattr(self, name) < 1:
                raise LstmkitError(f"{option_name(name)} must lie in [0, 1)"
                                   f", got {getattr(self, name)}")
        for name, option in (("activation_regularisation", "--ar"),
                             ("temporal_activation_regularisation", "--tar")):
            if not getattr(self, name) >= 0:
                raise LstmkitError(f"{option} must be 0 or more, got {getattr(self, name)}")
        if self.train.shuffle:
            raise LstmkitError("a language model reads contiguous streams whose batches must "
                               "stay in order: set train.shuffle=False")
        self.train.validate()
