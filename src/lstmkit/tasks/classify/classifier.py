"""The Classifier task: read and encode examples, fit, predict, evaluate, explain, save, load.

A run directory holds ``config.json`` (task "classify"), ``model.safetensors``,
``tokenizer.json`` (text), the baseline, ``metrics.json`` for the validation split, and
the training checkpoints and ``log.csv`` of the loop (the CLI adds the pictures of
lstmkit.report.classify_report).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from lstmkit.data.labelled_tables import (
    TableSource,
    check_values,
    load_sequences,
    load_texts,
)
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
from lstmkit.nn import GATE_NAMES, most_varying_units, record_gates, top_layer_steps
from lstmkit.tasks.classify.baselines import (
    Baseline,
    NearestNeighbourBaseline,
    TextBaseline,
    load_baseline,
    save_baseline,
)
from lstmkit.tasks.classify.config import ClassifierConfig
from lstmkit.tasks.classify.data import (
    EncodedExamples,
    Examples,
    ReadData,
    collate,
    frames,
    natural_sort,
    stratified_split,
)
from lstmkit.tasks.classify.network import (
    ClassificationLoss,
    SequenceClassifierNet,
    lstm_arguments_of,
)
from lstmkit.tasks.classify.results import Explanation, FitReport, scores_of
from lstmkit.tasks.classify.transfer import (
    GradualUnfreezing,
    discriminative_groups,
    language_model_encoder,
    layer_groups,
)
from lstmkit.tasks.lifecycle import Evaluation, Task
from lstmkit.train import TrainConfig, fit

TASK = "classify"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
SMALL_VALIDATION = 30
"""Fewer validation examples than this make early stopping and the best epoch a matter of
chance: one example more or less right moves the loss more than learning does."""
SMALL_TRAINING_PER_CLASS = 20
"""A class with fewer training examples than this is small data for an LSTM: its scores
swing with the seed, and a nearest-neighbour or linear baseline often wins."""
MIN_STEPS_PER_EPOCH = 4
"""A training part smaller than this many batches is cut into this many: with one
full-batch step per epoch, 50 epochs are 50 optimizer steps, too few to learn from."""

logger = logging.getLogger("lstmkit.classify")


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
        for k, sequence in enumerate(data, start=1):  # before float32 turns 1e308 into inf
            check_values(np.asarray(sequence, dtype=np.float64).ravel(), "the sequences given",
                         "values", lambda i, k=k: f"sequence {k} item {i + 1}")
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
            val_data: TableSource | None = None,
            budget_from: float | None = None) -> FitReport:
        """Train on ``data`` and keep the best epoch by validation loss.

        Validation is ``val_data`` or a stratified ``val_fraction`` of ``data``; the
        baseline is fitted on the same training part. With ``run_dir`` the run directory
        is written by the lifecycle's rules (see lstmkit.tasks.lifecycle); ``resume``
        continues an interrupted run with its saved model settings and this config's
        training options. ``train.time_budget_s`` counts from this call, or from
        ``budget_from`` (an earlier ``time.monotonic()`` reading: the CLI's command start,
        so the budget covers its imports too), and covers reading, the baseline,
        training, the final evaluation and the run directory's files.
        """
        return super().fit(data, run_dir, resume=resume, overwrite=overwrite,
                           val_data=val_data, budget_from=budget_from)

    def _fit(self, data: TableSource, run: Run | None, started: float,
             val_data: TableSource | None = None,
             budget_from: float | None = None) -> FitReport:
        if budget_from is not None:
            started = min(started, budget_from)
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
        self._warn_if_small(train_targets, val_targets)
        if not resumed:
            self._build(train_inputs)
        train_set = EncodedExamples(self.encode(train_inputs), train_targets)
        val_set = EncodedExamples(self.encode(val_inputs), val_targets) if val_inputs else None
        loss = ClassificationLoss(self._class_weights(train_targets))
        param_groups, hooks = self._fine_tuning()
        if run is not None and run.writer and not resumed:
            self._save_setup(run.work)  # what a resumed run rebuilds the network from
        # the baseline first: a --time-budget (counted from the command's start, reading
        # and encoding included) then leaves the training loop what remains of it
        self.baseline = self._fit_baseline(train_inputs, train_targets)
        _import_finishing_modules(run is not None and run.writer)
        training_started = time.monotonic()
        train_config = self._train_config(len(train_set))
        result = fit(self.net, train_set, loss, train_config, val_data=val_set,
                     run_dir=None if run is None else run.work, resume=resumed,
                     collate_fn=collate, param_groups=param_groups, hooks=hooks,
                     started=started, final_passes=1,
                     min_epochs=self.config.early_stopping_floor())
        seconds = time.monotonic() - training_started
        for parameter in self.net.parameters():  # gradual unfreezing may have frozen some
            parameter.requires_grad_(True)
        self.net.to("cpu")
        self.validation = (self._evaluate(val_inputs, val_targets, "validation split")
                           if val_inputs else None)
        if run is not None and run.writer and self.validation is not None:
            from lstmkit.report.classify_report import plot_confusion_matrix

            plot_confusion_matrix(self.validation, run.work / CONFUSION_FILE,
                                  title="validation split")
        seen = _sequences_seen(result.steps, len(train_set), train_config.batch_size)
        return FitReport(result, self.validation, len(train_set), seconds,
                         seen / max(seconds, 1e-9))

    def _warn_if_small(self, train_targets: np.ndarray, val_targets: np.ndarray) -> None:
        """Say when the training part or the validation split is too small to trust."""
        train_counts = np.bincount(train_targets, minlength=len(self.classes))
        few = [(c, n) for c, n in zip(self.classes, train_counts)
               if n < SMALL_TRAINING_PER_CLASS]
        if few:
            shown = ", ".join(f"{c}: {n}" for c, n in few[:5]) + (" ..." if len(few) > 5 else "")
            logger.warning(
                "small training data: %d examples for %d classes, and %d class(es) have fewer "
                "than %d (%s). Expect scores that vary with --seed; compare them with the "
                "baseline printed beside them, and give more examples where you can",
                len(train_targets), len(self.classes), len(few), SMALL_TRAINING_PER_CLASS,
                shown)
        if len(val_targets) == 0 or self.config.train.patience is None:
            return  # no validation split, or it decides nothing
        counts = np.bincount(val_targets, minlength=len(self.classes))
        missing = [c for c, n in zip(self.classes, counts) if n == 0]
        if len(val_targets) < SMALL_VALIDATION:
            logger.warning(
                "the validation split has only %d examples (%s); early stopping (after epoch "
                "%d, --min-epochs) and the choice of the best epoch rest on them. Give more "
                "with --val-data or --val-fraction",
                len(val_targets), ", ".join(f"{c}: {n}" for c, n in zip(self.classes, counts)),
                self.config.early_stopping_floor())
        elif missing:
            logger.warning(
                "the validation split has no examples of %s (too few to spare); early "
                "stopping does not see how the model does on them. Give --val-data",
                ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else ""))

    def _train_config(self, train_examples: int) -> TrainConfig:
        """The training loop's options, the batch cut so an epoch takes at least
        MIN_STEPS_PER_EPOCH steps (the same on resumption: it depends on the data only)."""
        train = self.config.train
        batch_size = min(train.batch_size,
                         max(1, math.ceil(train_examples / MIN_STEPS_PER_EPOCH)))
        if batch_size == train.batch_size:
            return train
        logger.info("batches of %d rather than %d: the %d training examples then give %d "
                    "optimizer steps per epoch", batch_size, train.batch_size,
                    train_examples, math.ceil(train_examples / batch_size))
        return dataclasses.replace(train, batch_size=batch_size)

    def _build(self, train_inputs: Examples) -> None:
        """Tokenizer or scaling, and the network, from the training part of the data."""
        config = self.config
        lstm_arguments = config.lstm_arguments()
        if config.from_lm is not None:
            pretrained = language_model_encoder(config.from_lm)
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
        top = {name: t.numpy() for name, t in top_layer_steps(trace, net.encoder).items()}
        cells = top["c"]  # (T, H)
        if units is None:
            units = most_varying_units(torch.from_numpy(cells), top_units)
        bad = [u for u in units if not 0 <= u < cells.shape[1]]
        if bad:
            raise LstmkitError(f"cell units {bad} do not exist; the top layer has units 0 .. "
                               f"{cells.shape[1] - 1}")
        attention = pooled.attention[0].numpy() if pooled.attention is not None else None
        units = list(units)
        gates = {name: top[key][:, units] for name, key in GATE_NAMES.items()}
        return Explanation(tokens, attention, cells[:, units], units,
                           dict(zip(self.classes, probabilities.tolist())), joiner, gates)

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


def _import_finishing_modules(plots: bool) -> None:
    """Import now what the work after training imports lazily (the scores' sklearn, the
    confusion matrix's matplotlib): a second or two on a cold start, which then falls
    inside the time budget the training loop sees rather than after it."""
    import sklearn.metrics  # noqa: F401

    if plots:
        import lstmkit.report.classify_report  # noqa: F401


def _sequences_seen(steps: int, examples: int, batch_size: int) -> int:
    """Sequences the optimizer saw in ``steps`` (full epochs, then the started one)."""
    per_epoch = math.ceil(examples / batch_size)
    return (steps // per_epoch) * examples + (steps % per_epoch) * batch_size
