"""Sequence classification: texts (sentiment) or numeric sequences, to one label each.

    from lstmkit.classify import Classifier, ClassifierConfig

    classifier = Classifier(ClassifierConfig(text_column="review", label_column="stars"))
    report = classifier.fit("reviews.csv", run_dir="runs/reviews")
    classifier.predict(["loved it", "never again"])     # label and one probability per class
    classifier.evaluate("test.csv").summary()           # beside TF-IDF + logistic regression
    Classifier.load("runs/reviews")

The pipeline: a table (data.labelled_tables) -> token ids (data.tokenizers) or
standardised values -> the network (tasks.classify_model) trained by the shared loop
(lstmkit.train.fit) -> metrics beside a baseline fitted on the same split
(tasks.classify_baselines). ``from_lm`` starts from a language model's embedding and
LSTM and fine-tunes them ULMFiT-style (discriminative learning rates, gradual
unfreezing).

A run directory holds ``config.json`` (task "classify"), ``model.safetensors``,
``tokenizer.json`` (text), the baseline, ``metrics.json`` for the validation split, and
the training checkpoints and ``log.csv`` of the loop (the CLI adds the pictures of
lstmkit.report.classify_report).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from lstmkit.data.labelled_tables import TableSource, load_sequences, load_texts
from lstmkit.data.tokenizers import (
    TOKENIZER_FILE,
    Tokenizer,
    build_tokenizer,
    tokenizer_from_json,
)
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, read_json
from lstmkit.io.rundir import CONFIG_FILE, FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.nn import record_gates
from lstmkit.tasks.classify_baselines import (
    Baseline,
    NearestNeighbourBaseline,
    TextBaseline,
    load_baseline,
    save_baseline,
)
from lstmkit.tasks.classify_model import POOLINGS, SequenceClassifierNet, lstm_arguments_of
from lstmkit.tasks.lifecycle import Evaluation, Task, config_from_json
from lstmkit.train import TrainConfig, TrainResult, fit

TASK = "classify"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
DATA_KINDS = ("text", "numbers")

Examples = list[str] | list[np.ndarray]
"""Inputs as read: texts, or numeric sequences each (steps, features)."""


# --------------------------------------------------------------------------- config


@dataclass
class ClassifierConfig:
    """Everything that defines a classifier: its data, tokenizer, network and training.

    ``data`` is "text" (``text_column``) or "numbers" (``value_columns``, long layout
    when ``id_column`` is set, else one row per sequence; ``frame_length`` consecutive
    steps are stacked into one LSTM input, which shortens long series that many times
    and eases learning from them). ``max_length`` truncates
    texts to their first tokens. ``dropout`` acts on embeddings and on the pooled
    summary, ``lstm_dropout`` between LSTM layers; ``lstm_options`` are further
    keyword arguments of lstmkit.nn.LSTM (its variants: peephole, layer_norm, zoneout,
    recurrent_dropout, weight_drop, forget_bias, backend). ``class_weights`` weighs the
    loss by inverse class frequency. ``val_fraction`` of the training data (stratified)
    is held out for early stopping and the reported metrics when no validation data is
    given. ``from_lm`` is a language-model run directory to start from (text only).
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
            raise LstmkitError(f"data must be one of {', '.join(DATA_KINDS)}, got {self.data!r}")
        if self.pooling not in POOLINGS:
            raise LstmkitError(
                f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        for name in ("max_length", "embedding_dim", "hidden_size", "num_layers",
                     "frame_length"):
            if getattr(self, name) < 1:
                raise LstmkitError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("dropout", "lstm_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise LstmkitError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise LstmkitError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if not 0 <= self.proj_size < self.hidden_size:
            raise LstmkitError(
                f"proj_size must be 0 (off) or below hidden_size {self.hidden_size}, "
                f"got {self.proj_size}")
        if self.lr_decay < 1:
            raise LstmkitError(f"lr_decay divides each lower layer's rate: at least 1, "
                               f"got {self.lr_decay}")
        if self.from_lm is not None and self.data != "text":
            raise LstmkitError("from_lm (--from-lm) starts from a language model: text only")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> ClassifierConfig:
        return config_from_json(cls, state)

    def lstm_arguments(self) -> dict[str, Any]:
        """lstmkit.nn.LSTM's constructor arguments, input size left to the network."""
        return {
            "hidden_size": self.hidden_size, "num_layers": self.num_layers,
            "dropout": self.lstm_dropout, "bidirectional": self.bidirectional,
            "proj_size": self.proj_size, **self.lstm_options,
        }


# --------------------------------------------------------------------------- results


def scores_of(targets: np.ndarray, predicted: np.ndarray, classes: list[str]
              ) -> tuple[dict[str, float], dict[str, Any]]:
    """(accuracy and macro-F1, {per-class precision/recall/F1/support, confusion matrix})."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support as per_class_scores

    labels = list(range(len(classes)))
    precision, recall, f1, support = per_class_scores(
        targets, predicted, labels=labels, zero_division=0)
    row = {"accuracy": float(accuracy_score(targets, predicted)),
           "macro_F1": float(f1_score(targets, predicted, labels=labels, average="macro",
                                      zero_division=0))}
    details = {
        "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(n)}
                      for c, p, r, f, n in zip(classes, precision, recall, f1, support)},
        # rows: true class, columns: predicted class
        "confusion": confusion_matrix(targets, predicted, labels=labels).tolist(),
    }
    return row, details


@dataclass
class FitReport:
    """What training did, and the validation split's evaluation (None without one).

    ``seconds`` is the wall time of the training loop (validation passes included,
    baseline and final evaluation not); ``sequences_per_second`` the training sequences
    it went through per second of it.
    """

    train: TrainResult
    validation: Evaluation | None
    train_examples: int
    seconds: float
    sequences_per_second: float


@dataclass
class Explanation:
    """Where the model looked and what chosen cell units did, for one input.

    ``attention`` (T,) is None unless the pooling is attention; ``cells`` is (T, U):
    the cell state c_t of ``units`` in the top layer's forward direction. ``joiner``
    goes between tokens to show them as text ("" when tokens carry their own spaces).
    """

    tokens: list[str]
    attention: np.ndarray | None
    cells: np.ndarray
    units: list[int]
    probabilities: dict[str, float]
    joiner: str


# --------------------------------------------------------------------------- batches


class ReadData(NamedTuple):
    inputs: Examples
    labels: list[str] | None
    ids: list[str] | None  # numbers read from a table: each sequence's id (or row)


class Batch(NamedTuple):
    inputs: Tensor  # (B, T) token ids, or (B, T, F) values
    lengths: Tensor  # (B,)
    targets: Tensor  # (B,), -1 where the label is unknown


class EncodedExamples(Dataset):
    """Encoded inputs (each a 1-D id tensor or a (T, F) tensor) with class indices."""

    def __init__(self, inputs: list[Tensor], targets: np.ndarray | None) -> None:
        self.inputs = inputs
        self.targets = torch.as_tensor(
            targets if targets is not None else np.full(len(inputs), -1), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


def collate(items: list[tuple[Tensor, Tensor]]) -> Batch:
    """Pad to the longest sequence of the batch (with 0, the padding id) and keep lengths."""
    inputs, targets = zip(*items)
    lengths = torch.tensor([len(x) for x in inputs])
    return Batch(pad_sequence(list(inputs), batch_first=True), lengths, torch.stack(targets))


class ClassificationLoss:
    """Mean cross-entropy of the class scores, optionally weighted per class."""

    def __init__(self, class_weights: Tensor | None) -> None:
        self.class_weights = class_weights

    def __call__(self, model: SequenceClassifierNet, batch: Batch) -> Tensor:
        logits = model(batch.inputs, batch.lengths)
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits, batch.targets, weight=weights)


# --------------------------------------------------------------------------- ULMFiT


def layer_groups(net: SequenceClassifierNet) -> list[list[torch.nn.Parameter]]:
    """Parameters from the top down: head (and attention), each LSTM layer, embedding."""
    encoder_layers: list[list[torch.nn.Parameter]] = [[] for _ in range(net.encoder.num_layers)]
    for name, parameter in net.encoder.named_parameters():
        # every LSTM parameter name ends in _l{layer} or _l{layer}_reverse
        layer = int(name.rsplit("_l", 1)[1].split("_")[0])
        encoder_layers[layer].append(parameter)
    top = [p for name, p in net.named_parameters()
           if not name.startswith(("encoder.", "embedding."))]
    groups = [top, *reversed(encoder_layers)]
    if net.embedding is not None:
        groups.append(list(net.embedding.parameters()))
    return groups


class GradualUnfreezing:
    """ULMFiT's schedule: epoch 1 trains the head only, each later epoch one more group."""

    def __init__(self, groups: list[list[torch.nn.Parameter]]) -> None:
        self.groups = groups

    def on_epoch_start(self, epoch: int, model: torch.nn.Module, optimizer: Any) -> None:
        # from the epoch number alone, so a resumed run freezes exactly as the first did
        for depth, group in enumerate(self.groups):
            for parameter in group:
                parameter.requires_grad_(depth < epoch)


def discriminative_groups(groups: list[list[torch.nn.Parameter]], lr: float,
                          decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: each group down from the head learns ``decay`` times slower."""
    return [{"params": group, "lr": lr / decay ** depth} for depth, group in enumerate(groups)]


# --------------------------------------------------------------------------- the classifier


class Classifier(Task):
    """A sequence classifier: build from a config, ``fit``, ``predict``, ``evaluate``,
    ``explain``, ``save`` and ``load``."""

    task = TASK

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self.classes: list[str] = []
        self.tokenizer: Tokenizer | None = None
        self.scaling: dict[str, list[float]] | None = None  # numbers: per-feature mean, std
        self.architecture: dict[str, Any] = {}
        self.net: SequenceClassifierNet | None = None
        self.baseline: Baseline | None = None
        self.validation: Evaluation | None = None  # of the validation split, after fit

    # ---------------------------------------------------------------- reading data

    def read(self, data: TableSource | Sequence[str] | Sequence[np.ndarray],
             labelled: bool) -> ReadData:
        """Inputs and labels from a file, a DataFrame, or a list of texts or (T, F) arrays.

        Unlabelled reading still returns the labels when the table has the label column.
        """
        config = self.config
        if isinstance(data, (list, tuple)):
            return self._read_list(data, labelled)
        if config.data == "text":
            table = load_texts(data, config.text_column, config.label_column, labelled)
            return ReadData(table.texts, table.labels, None)
        table = load_sequences(data, config.value_columns, config.label_column,
                               config.id_column, config.step_column, labelled)
        return ReadData(table.sequences, table.labels, table.ids)

    def _read_list(self, data: Sequence[Any], labelled: bool) -> ReadData:
        if labelled:
            raise LstmkitError("labels are needed: pass a table with a label column")
        if self.config.data == "text":
            for k, text in enumerate(data, start=1):
                if not isinstance(text, str):
                    raise LstmkitError(f"input {k} is a {type(text).__name__}, not a text")
                if not text.strip():
                    raise LstmkitError(f"text {k} is empty; give some text to classify")
            return ReadData(list(data), None, None)
        if any(isinstance(s, str) for s in data):
            raise LstmkitError("this model classifies numeric sequences, not texts; give a "
                               "table of sequences")
        sequences = [np.asarray(s, dtype=np.float32) for s in data]
        for k, sequence in enumerate(sequences, start=1):
            if sequence.ndim == 1:
                sequences[k - 1] = sequence = sequence[:, None]  # (T,) -> (T, 1)
            if sequence.ndim != 2 or len(sequence) == 0:
                raise LstmkitError(f"sequence {k} must be (steps, features) with at least one "
                                   f"step, got shape {sequence.shape}")
        return ReadData(sequences, None, None)

    def targets(self, labels: list[str]) -> np.ndarray:
        """Class indices of ``labels``; a label training never saw is an error."""
        index = {c: k for k, c in enumerate(self.classes)}
        unseen = sorted({label for label in labels if label not in index})
        if unseen:
            shown = ", ".join(map(repr, unseen[:5])) + (" ..." if len(unseen) > 5 else "")
            raise LstmkitError(
                f"labels never seen in training: {shown}; the model knows only "
                f"{', '.join(map(repr, self.classes))}. Remove those rows or train on them"
            )
        return np.array([index[label] for label in labels])

    def encode(self, inputs: Examples) -> list[Tensor]:
        """Token ids (texts, cut at max_length) or standardised values, one tensor each."""
        if self.config.data == "text":
            encoded = self.tokenizer.encode_many(inputs)
            for k, ids in enumerate(encoded, start=1):
                if not ids:
                    raise LstmkitError(f"text {k} gives no tokens: {inputs[k - 1]!r}")
            return [torch.tensor(ids[: self.config.max_length], dtype=torch.long)
                    for ids in encoded]
        mean = np.asarray(self.scaling["mean"], dtype=np.float32)
        std = np.asarray(self.scaling["std"], dtype=np.float32)
        features = len(mean)
        tensors = []
        for k, series in enumerate(inputs, start=1):
            if series.shape[1] != features:
                raise LstmkitError(f"sequence {k} has {series.shape[1]} features; the model "
                                   f"was trained on {features}")
            tensors.append(torch.from_numpy(frames((series - mean) / std,
                                                   self.config.frame_length)))
        return tensors

    # ---------------------------------------------------------------- training

    def fit(self, data: TableSource, run_dir: str | Path | None = None, *,
            resume: bool = False, overwrite: bool = False,
            val_data: TableSource | None = None) -> FitReport:
        """Train on ``data`` and keep the best epoch by validation loss.

        Validation is ``val_data`` or a stratified ``val_fraction`` of ``data``; the
        baseline is fitted on the same training part. With ``run_dir`` the run directory
        is written by the lifecycle's rules (see lstmkit.tasks.lifecycle); ``resume``
        continues an interrupted run with its saved model settings and this config's
        training options.
        """
        return super().fit(data, run_dir, resume=resume, overwrite=overwrite,
                           val_data=val_data)

    def _fit(self, data: TableSource, run: Run | None, started: float,
             val_data: TableSource | None = None) -> FitReport:
        resumed = run is not None and run.resumed
        if resumed:
            self._adopt_setup(read_json(run.work / CONFIG_FILE),
                              read_json(run.work / TOKENIZER_FILE)
                              if (run.work / TOKENIZER_FILE).is_file() else None)
            self.net = self._network()
        inputs, labels, _ = self.read(data, labelled=True)
        if not resumed:
            self.classes = natural_sort(set(labels))
        if len(self.classes) < 2:
            raise LstmkitError(
                f"the training data has a single class ({self.classes[0]!r}); a classifier "
                "needs examples of at least two classes")
        targets = self.targets(labels)
        if val_data is not None:
            val_inputs, val_labels, _ = self.read(val_data, labelled=True)
            val_targets = self.targets(val_labels)
            train_inputs, train_targets = inputs, targets
        else:
            train_index, val_index = stratified_split(targets, self.config.val_fraction,
                                                      self.config.train.seed)
            train_inputs = [inputs[k] for k in train_index]
            train_targets = targets[train_index]
            val_inputs = [inputs[k] for k in val_index]
            val_targets = targets[val_index]
        if not resumed:
            self._build(train_inputs)
        train_set = EncodedExamples(self.encode(train_inputs), train_targets)
        val_set = EncodedExamples(self.encode(val_inputs), val_targets) if val_inputs else None
        loss = ClassificationLoss(self._class_weights(train_targets))
        param_groups, hooks = self._fine_tuning()
        if run is not None and run.writer and not resumed:
            self._save_setup(run.work)  # what a resumed run rebuilds the network from
        started = time.monotonic()
        result = fit(self.net, train_set, loss, self.config.train, val_data=val_set,
                     run_dir=None if run is None else run.work, resume=resumed,
                     collate_fn=collate, param_groups=param_groups, hooks=hooks,
                     started=started, final_passes=1)
        seconds = time.monotonic() - started
        for parameter in self.net.parameters():  # gradual unfreezing may have frozen some
            parameter.requires_grad_(True)
        self.net.to("cpu")
        self.baseline = self._fit_baseline(train_inputs, train_targets)
        self.validation = (self._evaluate(val_inputs, val_targets, "validation split")
                           if val_inputs else None)
        if run is not None and run.writer and self.validation is not None:
            from lstmkit.report.classify_report import plot_confusion_matrix

            plot_confusion_matrix(self.validation, run.work / CONFUSION_FILE,
                                  title="validation split")
        seen = _sequences_seen(result.steps, len(train_set), self.config.train.batch_size)
        return FitReport(result, self.validation, len(train_set), seconds,
                         seen / max(seconds, 1e-9))

    def _build(self, train_inputs: Examples) -> None:
        """Tokenizer or scaling, and the network, from the training part of the data."""
        config = self.config
        lstm_arguments = config.lstm_arguments()
        if config.from_lm is not None:
            pretrained = _pretrained_encoder(config.from_lm)
            self.tokenizer = pretrained.tokenizer
            lstm_arguments = lstm_arguments_of(pretrained.lstm)
            embedding = pretrained.embedding
            self.architecture = {"vocab_size": embedding.num_embeddings,
                                 "embedding_dim": embedding.embedding_dim}
        elif config.data == "text":
            self.tokenizer = build_tokenizer(config.tokenizer, train_inputs,
                                             vocab_size=config.vocab_size,
                                             min_count=config.min_count,
                                             lowercase=config.lowercase)
            self.architecture = {"vocab_size": self.tokenizer.vocab_size,
                                 "embedding_dim": config.embedding_dim}
        else:
            steps = np.concatenate(train_inputs)  # (all steps, F)
            std = steps.std(axis=0)
            self.scaling = {"mean": steps.mean(axis=0).tolist(),
                            "std": np.where(std > 0, std, 1.0).tolist()}
            self.architecture = {"input_size": int(steps.shape[1]) * config.frame_length}
        self.architecture |= {"lstm": lstm_arguments, "num_classes": len(self.classes)}
        torch.manual_seed(config.train.seed)
        self.net = self._network()
        if config.from_lm is not None:
            self.net.embedding.load_state_dict(pretrained.embedding.state_dict())
            self.net.encoder.load_state_dict(pretrained.lstm.state_dict())

    def _network(self) -> SequenceClassifierNet:
        architecture = self.architecture
        try:
            return SequenceClassifierNet(
                num_classes=architecture["num_classes"],
                lstm_arguments=architecture["lstm"],
                pooling=self.config.pooling,
                vocab_size=architecture.get("vocab_size"),
                embedding_dim=architecture.get("embedding_dim"),
                input_size=architecture.get("input_size"),
                dropout=self.config.dropout,
            )
        except (TypeError, ValueError) as error:  # an LSTM option unknown or out of range
            raise LstmkitError(f"cannot build the network: {error}") from None

    def _fine_tuning(self) -> tuple[list[dict[str, Any]] | None, GradualUnfreezing | None]:
        """ULMFiT's parameter groups and unfreezing hook when starting from a language model."""
        if self.config.from_lm is None:
            return None, None
        groups = layer_groups(self.net)
        param_groups = discriminative_groups(groups, self.config.train.lr, self.config.lr_decay)
        return param_groups, GradualUnfreezing(groups) if self.config.gradual_unfreeze else None

    def _class_weights(self, targets: np.ndarray) -> Tensor | None:
        if not self.config.class_weights:
            return None
        counts = np.bincount(targets, minlength=len(self.classes)).astype(np.float64)
        # inverse frequency, normalised so a balanced set gets weight 1 per class
        weights = len(targets) / (len(self.classes) * np.maximum(counts, 1.0))
        return torch.tensor(weights, dtype=torch.float32)

    def _fit_baseline(self, inputs: Examples, targets: np.ndarray) -> Baseline:
        kind = TextBaseline if self.config.data == "text" else NearestNeighbourBaseline
        return kind.fit(list(inputs), targets, seed=self.config.train.seed)

    # ---------------------------------------------------------------- using the model

    def predict_proba(self, data: TableSource | Sequence[str] | Examples,
                      batch_size: int = 256) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of ``classes``."""
        inputs = self.read(data, labelled=False).inputs
        return self._probabilities(self.encode(inputs), batch_size)

    def predict(self, data: TableSource | Sequence[str]) -> pd.DataFrame:
        """One row per input: the predicted label and a ``p(<class>)`` column per class.

        A table's label column, when present, is checked against the training classes
        and kept as ``true_label``.
        """
        self._require_model()
        inputs, labels, ids = self.read(data, labelled=False)
        if labels is not None:
            self.targets(labels)
        probabilities = self._probabilities(self.encode(inputs))
        frame = pd.DataFrame({"predicted": [self.classes[k] for k in probabilities.argmax(1)]})
        if labels is not None:
            frame.insert(0, "true_label", labels)
        if self.config.data == "text":
            frame.insert(0, "text", inputs)
        elif ids is not None:
            frame.insert(0, "id", ids)
        for k, name in enumerate(self.classes):
            frame[f"p({name})"] = probabilities[:, k]
        return frame

    def evaluate(self, data: TableSource) -> Evaluation:
        """Scores on labelled ``data``, beside the saved baseline's on the same examples."""
        self._require_model()
        inputs, labels, _ = self.read(data, labelled=True)
        return self._evaluate(inputs, self.targets(labels), str(data))

    def _evaluate(self, inputs: Examples, targets: np.ndarray, name: str) -> Evaluation:
        """Rows "model" and "baseline"; details: classes, examples, per_class and confusion
        (each by row), unknown_tokens (text)."""
        encoded = self.encode(inputs)
        predicted = {"model": self._probabilities(encoded).argmax(axis=1)}
        labels = {"model": "lstmkit LSTM"}
        if self.baseline is not None:
            predicted["baseline"] = self.baseline.predict_proba(
                list(inputs), len(self.classes)).argmax(axis=1)
            labels["baseline"] = self.baseline.name
        rows, per_class, confusion = {}, {}, {}
        for key, chosen in predicted.items():
            rows[key], details = scores_of(targets, chosen, self.classes)
            per_class[key], confusion[key] = details["per_class"], details["confusion"]
        unknown = (self.tokenizer.count_unknowns(e.tolist() for e in encoded)
                   if self.tokenizer is not None else None)
        notes = [f"{len(targets)} examples, {len(self.classes)} classes"]
        if unknown:
            notes.append(f"{unknown} tokens were outside the vocabulary")
        return Evaluation(task=TASK, data=name, rows=rows, labels=labels, notes=notes,
                          details={"classes": self.classes, "examples": len(targets),
                                   "per_class": per_class, "confusion": confusion,
                                   "unknown_tokens": unknown})

    def _probabilities(self, encoded: list[Tensor], batch_size: int = 256) -> np.ndarray:
        net = self._require_model()
        net.eval()
        # batches of similar lengths waste little time on padding
        order = np.argsort([len(x) for x in encoded], kind="stable")
        probabilities = np.empty((len(encoded), len(self.classes)))
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                chosen = order[start:start + batch_size]
                batch = collate([(encoded[k], torch.tensor(-1)) for k in chosen])
                logits = net(batch.inputs, batch.lengths)
                probabilities[chosen] = torch.softmax(logits, dim=1).double().numpy()
        return probabilities

    def explain(self, example: str | np.ndarray, units: Sequence[int] | None = None,
                top_units: int = 8) -> Explanation:
        """Attention weights per token (or step) and chosen cell units' states, for one input.

        ``units`` defaults to the ``top_units`` units whose cell state varies most
        over this input.
        """
        net = self._require_model()
        inputs = self.read([example], labelled=False).inputs
        encoded = self.encode(inputs)[0]
        if self.tokenizer is not None:
            tokens = self.tokenizer.tokens(inputs[0])[: len(encoded)]
            joiner = " " if self.tokenizer.kind == "word" else ""
        else:
            # one token per frame, named by the step it starts at
            tokens = [str(frame * self.config.frame_length) for frame in range(len(encoded))]
            joiner = " "
        net.eval()
        with torch.no_grad(), record_gates(net.encoder) as trace:
            inputs = encoded[None]  # (1, T) or (1, T, F)
            lengths = torch.tensor([len(encoded)])
            pooled = net.encode(inputs, lengths)
            probabilities = torch.softmax(net.head(pooled.features), dim=1)[0]
        top_forward = (net.encoder.num_layers - 1) * net.encoder.num_directions
        cells = trace.last[top_forward]["c"][0].numpy()  # batch_first (1, T, H) -> (T, H)
        if units is None:
            units = np.argsort(-cells.std(axis=0), kind="stable")[:top_units].tolist()
        bad = [u for u in units if not 0 <= u < cells.shape[1]]
        if bad:
            raise LstmkitError(f"cell units {bad} do not exist; the top layer has units 0 .. "
                               f"{cells.shape[1] - 1}")
        attention = pooled.attention[0].numpy() if pooled.attention is not None else None
        return Explanation(tokens, attention, cells[:, list(units)], list(units),
                           dict(zip(self.classes, probabilities.tolist())), joiner)

    def _require_model(self) -> SequenceClassifierNet:
        if self.net is None:
            raise LstmkitError("the classifier is not trained: call fit or load a run first")
        return self.net

    # ---------------------------------------------------------------- saving

    def _write(self, directory: Path) -> None:
        self._require_model()
        self._save_setup(directory)
        save_weights(directory / MODEL_FILE, self.net.state_dict())
        if self.baseline is not None:
            save_baseline(directory, self.baseline)
        if self.validation is not None:
            atomic_write_json(directory / METRICS_FILE, self.validation.to_json())

    def _save_setup(self, run_dir: Path) -> None:
        """What rebuilds the network before training: config, classes, tokenizer, scaling."""
        write_config(run_dir, TASK, {
            "classifier": self.config.to_json(), "classes": self.classes,
            "architecture": self.architecture, "scaling": self.scaling,
        })
        if self.tokenizer is not None:
            self.tokenizer.save(run_dir / TOKENIZER_FILE)

    def _adopt_setup(self, saved: dict[str, Any], tokenizer: dict[str, Any] | None) -> None:
        """Take the saved model settings and state; keep this config's training options."""
        train = self.config.train
        self.config = ClassifierConfig.from_json(saved["classifier"])
        self.config.train = train
        self.classes = list(saved["classes"])
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise LstmkitError(f"config.json lists the classes {self.classes[:5]}; a "
                               "classifier has two or more distinct ones: train again")
        self.architecture = saved["architecture"]
        if self.architecture["num_classes"] != len(self.classes):
            raise LstmkitError(f"config.json lists {len(self.classes)} classes but its network "
                               f"has {self.architecture['num_classes']}: train again")
        self.scaling = saved["scaling"]
        if self.config.data == "text":
            if tokenizer is None:
                raise LstmkitError(f"the run has no {TOKENIZER_FILE}; train again")
            self.tokenizer = tokenizer_from_json(tokenizer)

    @classmethod
    def _read(cls, run: FinishedRun) -> Classifier:
        saved = run.config
        classifier = cls(ClassifierConfig.from_json(saved["classifier"]))
        classifier._adopt_setup(saved, run.json(TOKENIZER_FILE)
                                if run.has(TOKENIZER_FILE) else None)
        weights = run.weights(MODEL_FILE, classifier._network)
        classifier.net = classifier._network()
        classifier.net.load_state_dict(weights)
        classifier.baseline = load_baseline(run)
        if run.has(METRICS_FILE):
            classifier.validation = Evaluation.from_json(run.json(METRICS_FILE))
        return classifier


# --------------------------------------------------------------------------- helpers


def frames(series: np.ndarray, length: int) -> np.ndarray:
    """(T, F) -> (ceil(T / length), length * F): each row holds ``length`` consecutive steps.

    The last frame is completed by repeating the last step, so no zeros are invented.
    """
    T, F = series.shape
    count = math.ceil(T / length)
    if count * length > T:
        series = np.concatenate([series, np.repeat(series[-1:], count * length - T, axis=0)])
    return series.reshape(count, length * F)  # step t * length + k lands at [t, k * F:]


def natural_sort(labels: set[str]) -> list[str]:
    """Labels in numeric order when they are all numbers ("2" before "10"), else as text."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def stratified_split(targets: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation parts, ``fraction`` of each class held out.

    Every class keeps at least one training example; a class too small to spare one
    has no validation examples.
    """
    generator = np.random.default_rng(seed)
    held_out = []
    for target in np.unique(targets):
        members = generator.permutation(np.flatnonzero(targets == target))
        take = min(int(round(fraction * len(members))), len(members) - 1)
        held_out.extend(members[:take].tolist())
    validation = np.sort(np.asarray(held_out, dtype=np.int64))
    training = np.setdiff1d(np.arange(len(targets)), validation)
    return training, validation


def _sequences_seen(steps: int, examples: int, batch_size: int) -> int:
    """Sequences the optimizer saw in ``steps`` (full epochs, then the started one)."""
    per_epoch = math.ceil(examples / batch_size)
    return (steps // per_epoch) * examples + (steps % per_epoch) * batch_size


def _pretrained_encoder(run_dir: str) -> Any:
    """The language model's tokenizer, embedding and LSTM (see tasks.language_model)."""
    try:
        from lstmkit.tasks.language_model import pretrained_encoder
    except ModuleNotFoundError as missing:
        if missing.name != "lstmkit.tasks.language_model":
            raise
        raise LstmkitError("--from-lm needs the language-model task, which this lstmkit "
                           "does not have") from None
    encoder = pretrained_encoder(run_dir)
    if encoder.lstm.bidirectional:
        raise LstmkitError(f"the language model in {run_dir} is bidirectional; a classifier "
                           "can start only from a left-to-right one")
    return encoder
