"""Sequence classification: texts (sentiment) or numeric sequences, to one label each.

    from lstmkit.classify import Classifier, ClassifierConfig

    classifier = Classifier(ClassifierConfig(text_column="review", label_column="stars"))
    report = classifier.fit("reviews.csv", run_dir="runs/reviews")
    classifier.predict(["loved it", "never again"])     # label and one probability per class
    classifier.evaluate("test.csv").summary()           # beside TF-IDF + logistic regression
    Classifier.load("runs/reviews")

The pipeline: a table (data.labelled_tables) -> token ids (data.tokenizers) or
standardised values -> the network (tasks.classify.network) trained by the shared loop
(lstmkit.train.fit) -> metrics beside a baseline fitted on the same split
(tasks.classify.baselines). ``from_lm`` starts from a language model's embedding and
LSTM and fine-tunes them ULMFiT-style (discriminative learning rates, gradual
unfreezing).

One module per concept: ``config`` (ClassifierConfig), ``data`` (inputs as read,
encoded examples, batches, the stratified split), ``network`` (SequenceClassifierNet
and its loss), ``transfer`` (ULMFiT: layer groups, gradual unfreezing, discriminative
rates, the language model's encoder), ``baselines`` (TF-IDF and nearest neighbour),
``results`` (scores, FitReport, Explanation), ``classifier`` (the Classifier task).
"""

from lstmkit.tasks.classify.classifier import CONFUSION_FILE, METRICS_FILE, Classifier
from lstmkit.tasks.classify.config import ClassifierConfig
from lstmkit.tasks.classify.results import Explanation, FitReport

__all__ = ["CONFUSION_FILE", "METRICS_FILE", "Classifier", "ClassifierConfig", "Explanation",
           "FitReport"]
