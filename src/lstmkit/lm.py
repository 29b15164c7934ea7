"""``lstmkit.lm``: language models of text; training, metrics, generation, transfer.

    from lstmkit.lm import LanguageModel, LanguageModelConfig

See :mod:`lstmkit.tasks.language_model` for the whole story, and
:mod:`lstmkit.data.token_stream` for how a corpus becomes a memory-mapped token stream.
"""

from lstmkit.data.token_stream import STDLIB, Corpus, TokenStream, cached_stream, stdlib_files
from lstmkit.report.cell_activations import find_interesting_units, write_cell_activations
from lstmkit.tasks.language_model import (
    CrossEntropy,
    FitReport,
    LanguageModel,
    LanguageModelConfig,
    LanguageModelNet,
    PretrainedEncoder,
    StreamLoss,
    next_token_probabilities,
    pretrained_encoder,
)
from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.train import TrainConfig

__all__ = ["STDLIB", "Corpus", "CrossEntropy", "Evaluation", "FitReport", "LanguageModel",
           "LanguageModelConfig", "LanguageModelNet", "PretrainedEncoder", "StreamLoss",
           "TokenStream", "TrainConfig", "cached_stream", "find_interesting_units",
           "next_token_probabilities", "pretrained_encoder", "stdlib_files",
           "write_cell_activations"]
