"""``lstmkit.translate``: sequence-to-sequence translation with LSTMs and attention.

    from lstmkit.translate import Translator, TranslationConfig

See :mod:`lstmkit.tasks.translate` for the whole story, :mod:`lstmkit.data.parallel_text`
for how parallel text is read and batched, and :mod:`lstmkit.data.gettext_catalogs` for
the corpus made from the machine's own software translations.
"""

from lstmkit.data.parallel_text import ParallelText, read_parallel, split_by_source
from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.tasks.translate import (
    Alignment,
    FitReport,
    Hypothesis,
    TranslationConfig,
    TranslationNet,
    Translator,
)
from lstmkit.train import TrainConfig

__all__ = ["Alignment", "Evaluation", "FitReport", "Hypothesis", "ParallelText", "TrainConfig",
           "TranslationConfig", "TranslationNet", "Translator", "read_parallel",
           "split_by_source"]
