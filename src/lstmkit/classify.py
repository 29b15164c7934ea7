"""``lstmkit.classify``: sequence classification of texts and numeric sequences.

    from lstmkit.classify import Classifier, ClassifierConfig

See :mod:`lstmkit.tasks.classify` for the whole story.
"""

from lstmkit.tasks.classify import Classifier, ClassifierConfig, Explanation, FitReport
from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.train import TrainConfig

__all__ = ["Classifier", "ClassifierConfig", "Evaluation", "Explanation", "FitReport",
           "TrainConfig"]
