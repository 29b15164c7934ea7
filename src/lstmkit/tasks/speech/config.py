"""A speech recogniser's config: features, alphabet, network, augmentation, training and
decoding, round-tripping through JSON."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from lstmkit.data.audio import FeatureConfig
from lstmkit.data.speech_corpus import ALPHABET
from lstmkit.errors import LstmkitError
from lstmkit.tasks.lifecycle import JsonConfig, check_lstm_variants, check_share, check_whole
from lstmkit.train import TrainConfig

TASK = "speech"


def _default_training() -> TrainConfig:
    # batch_size counts feature frames (10 ms each) here: see SpeechConfig
    return TrainConfig(epochs=30, batch_size=4000, lr=3e-3, schedule="cosine",
                       warmup_steps=100, grad_clip=5.0, patience=6, shuffle=True)


@dataclass
class SpeechConfig(JsonConfig):
    """Everything that defines a speech recogniser.

    Features: ``features`` holds :class:`lstmkit.data.audio.FeatureConfig`'s fields (log-mel
    bins, window, hop); they are normalised by the training set's mean and deviation
    per bin. ``stack`` consecutive frames are joined into one step of the LSTM (40 ms
    at 4), which shortens the recurrence that many times.

    Alphabet: the characters transcripts may use; CTC adds the blank. A transcript
    with a character outside it is refused (normalise it, or give ``alphabet``).

    Network: ``num_layers`` LSTM layers of ``hidden_size`` units per direction over the
    stacked frames; ``bidirectional`` for offline recognition, unidirectional for
    streaming (the state then runs on from chunk to chunk). ``lstm`` holds
    lstmkit.nn.LSTM variants; ``dropout`` acts between layers and before the output.

    Augmentation while training: SpecAugment's ``frequency_masks`` masks of up to
    ``frequency_mask_width`` bins and ``time_masks`` masks of up to
    ``time_mask_fraction`` of the utterance; ``speeds`` adds copies of the training
    audio played that many times faster (Kaldi's 0.9 and 1.1); ``noise_snr_db`` adds a
    copy with white noise at that signal-to-noise ratio.

    Data: a single set is split by sentence into ``validation_fraction`` and
    ``test_fraction``. Training: ``train.batch_size`` counts feature frames per batch;
    early stopping and the best epoch follow the greedy character error rate on at
    most ``validation_utterances`` validation recordings.

    Decoding: CTC prefix beam search of ``beam_size`` (1: greedy).
    """

    features: dict[str, Any] = field(
        default_factory=lambda: dataclasses.asdict(FeatureConfig()))
    alphabet: str = ALPHABET
    stack: int = 4
    hidden_size: int = 256
    num_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.1
    lstm: dict[str, Any] = field(default_factory=dict)
    frequency_masks: int = 1
    frequency_mask_width: int = 15
    time_masks: int = 1
    time_mask_fraction: float = 0.05
    speeds: list[float] = field(default_factory=list)
    noise_snr_db: float | None = None
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    validation_utterances: int = 300
    beam_size: int = 8
    train: TrainConfig = field(default_factory=_default_training)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = TrainConfig(**self.train)
        if isinstance(self.features, dict):  # every feature option written out
            self.features = dataclasses.asdict(self.feature_config)
        self.validate()

    @property
    def feature_config(self) -> FeatureConfig:
        try:
            return FeatureConfig(**self.features)
        except TypeError as error:
            raise LstmkitError(f"features hold unknown options ({error}); the feature options "
                               f"are {[f.name for f in dataclasses.fields(FeatureConfig)]}"
                               ) from None

    @property
    def vocabulary_size(self) -> int:
        """The alphabet and CTC's blank (token 0)."""
        return len(self.alphabet) + 1

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first option that is out of range."""
        if not isinstance(self.features, dict):
            raise LstmkitError("features must be a FeatureConfig's fields")
        self.feature_config  # checks the feature options  # noqa: B018
        if len(set(self.alphabet)) != len(self.alphabet) or " " not in self.alphabet:
            raise LstmkitError(f"--alphabet must list each character once and include the "
                               f"space that separates words, got {self.alphabet!r}")
        for name in ("stack", "hidden_size", "num_layers", "validation_utterances",
                     "beam_size"):
            check_whole(name, getattr(self, name), 1)
        for name in ("frequency_masks", "frequency_mask_width", "time_masks"):
            check_whole(name, getattr(self, name), 0)
        for name in ("dropout", "time_mask_fraction"):
            check_share(name, getattr(self, name))
        for name in ("validation_fraction", "test_fraction"):
            check_share(name, getattr(self, name), 0.5)
        if any(not (isinstance(s, (int, float)) and 0.5 <= s <= 2 and s != 1)
               for s in self.speeds):
            raise LstmkitError(f"--speeds must be factors between 0.5 and 2 other than 1 (the "
                               f"audio as it is always trains), got {self.speeds}")
        if self.noise_snr_db is not None and not (
                isinstance(self.noise_snr_db, (int, float)) and math.isfinite(self.noise_snr_db)):
            raise LstmkitError(f"--noise-snr must be a number of decibels, got "
                               f"{self.noise_snr_db!r}")
        check_lstm_variants(self.lstm)
        self.train.validate()
