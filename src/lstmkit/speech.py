"""``lstmkit.speech``: speech recognition with LSTM-CTC acoustic models.

    from lstmkit.speech import Recogniser, SpeechConfig

See :mod:`lstmkit.tasks.speech` for the whole story, :mod:`lstmkit.data.audio` for the
features, :mod:`lstmkit.data.speech_data` for manifests and folders, and
:mod:`lstmkit.data.speech_corpus` for the corpus synthesised with espeak-ng.
"""

from lstmkit.data.audio import FeatureConfig, log_mel, read_audio
from lstmkit.data.speech_data import SpeechData, read_speech_data
from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.tasks.speech import (
    CharacterLanguageModel,
    FitReport,
    Recogniser,
    SpeechConfig,
    SpeechStream,
    Transcript,
    Word,
)
from lstmkit.train import TrainConfig

__all__ = ["CharacterLanguageModel", "Evaluation", "FeatureConfig", "FitReport", "Recogniser",
           "SpeechConfig", "SpeechData", "SpeechStream", "TrainConfig", "Transcript", "Word",
           "log_mel", "read_audio", "read_speech_data"]
