"""The Translator task: tokenizers and a TranslationNet trained on parallel text; fit,
translate (streamed, beam search, ensembles), evaluate, align, save, load.

A run directory holds ``config.json`` (task "translation", the data it was trained on),
``source_tokenizer.json`` and ``target_tokenizer.json`` (one file when shared),
``model.safetensors``, ``metrics.json``, and the training loop's checkpoint and log.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lstmkit.data.parallel_text import (
    ParallelText,
    TokenBatches,
    read_parallel,
    split_by_source,
)
from lstmkit.data.tokenizers import (
    UNK_ID,
    Tokenizer,
    build_tokenizer,
    tokenizer_from_json,
)
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, read_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.tasks.lifecycle import Evaluation, Task
from lstmkit.tasks.translate.averaging import WeightAverage
from lstmkit.tasks.translate.config import TASK, TranslationConfig
from lstmkit.tasks.translate.metrics import corpus_scores, evaluation_of
from lstmkit.tasks.translate.network import TranslationNet, translation_loss
from lstmkit.tasks.translate.search import Hypothesis, beam_search
from lstmkit.train import TrainResult, fit

logger = logging.getLogger("lstmkit.translate")

BOS, EOS = "<s>", "</s>"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
SOURCE_TOKENIZER_FILE = "source_tokenizer.json"
TARGET_TOKENIZER_FILE = "target_tokenizer.json"
DECODE_BATCH = 64
"""Sentences decoded side by side (times the beam: rows of the decoder's batch)."""
STREAM_CHUNK = 256
"""Sentences read ahead when translating a stream: sorted by length inside the chunk,
handed back in input order once the chunk is done."""

ParallelData = ParallelText | str | Path | Sequence[str | Path]


@dataclass
class FitReport:
    """What :meth:`Translator.fit` did: the loop's result, the data's sizes, the best
    validation scores (greedy decoding) and training throughput."""

    result: TrainResult
    pairs: dict[str, int]
    validation: dict[str, float] | None
    target_tokens_per_second: float

    def summary(self) -> str:
        lines = [f"trained {self.result.steps} steps on {self.pairs['train']:,} pairs "
                 f"({self.target_tokens_per_second:,.0f} target tokens/s), stopped: "
                 f"{self.result.stop_reason}, best epoch {self.result.best_epoch}"]
        if self.validation:
            lines.append("validation (greedy): " + ", ".join(
                f"{name} {value:.2f}" for name, value in self.validation.items()))
        return "\n".join(lines)


@dataclass
class Alignment:
    """Where the model looked: ``weights[t, s]`` is the attention of target piece t on
    source piece s (the last target row is the end of the sentence)."""

    source_pieces: list[str]
    target_pieces: list[str]
    weights: torch.Tensor  # (T, S)
    translation: str


class Translator(Task):
    """Sequence-to-sequence translation with an LSTM encoder-decoder and attention."""

    task = TASK

    def __init__(self, config: TranslationConfig | None = None) -> None:
        self.config = config or TranslationConfig()
        self.source_tokenizer: Tokenizer | None = None
        self.target_tokenizer: Tokenizer | None = None
        self.net: TranslationNet | None = None
        self.data: dict[str, Any] | None = None  # what it was trained on, to find its parts
        self.longest_source = 0  # tokens of the longest training source
        self.metrics: dict[str, Any] = {}

    # ---------------------------------------------------------------- training

    def fit(self, data: ParallelData, run_dir: str | Path | None = None, *,
            resume: bool = False, overwrite: bool = False,
            validation: ParallelData | None = None, source_column: str | None = None,
            target_column: str | None = None) -> FitReport:
        """Learn the vocabulary and the network from parallel text (see
        :func:`lstmkit.data.parallel_text.read_parallel`).

        Without ``validation``, the data is split by source sentence into training,
        validation and test parts (``config.validation_fraction``, ``test_fraction``);
        with it, all of ``data`` trains. With ``run_dir`` the run directory is written by
        the lifecycle's rules; ``resume`` continues an interrupted run.
        """
        return super().fit(data, run_dir, resume=resume, overwrite=overwrite,
                           validation=validation, source_column=source_column,
                           target_column=target_column)

    def _fit(self, data: ParallelData, run: Run | None, started: float,
             validation: ParallelData | None = None, source_column: str | None = None,
             target_column: str | None = None) -> FitReport:
        config = self.config
        config.validate()
        parts = self._parts(data, validation, source_column, target_column)
        train_text, validation_text = parts["train"], parts["validation"]
        if len(train_text) == 0:
            raise LstmkitError(f"{train_text.name} holds no training pairs")
        resumed = run is not None and run.resumed
        if resumed:  # the vocabulary the run started with, not one learnt again
            self.source_tokenizer, self.target_tokenizer = _read_tokenizers(
                lambda name: read_json(run.work / name), config.shared_vocabulary)
        else:
            self._build_tokenizers(train_text)
            if run is not None and run.writer:
                self._write_tokenizers(run.work)
        train_set = self._token_batches(train_text, filter_lengths=True)
        self.longest_source = max(len(s) for s in train_set.sources)
        validation_sample = validation_text.subset(
            range(min(len(validation_text), config.validation_sentences)))
        # the loop validates when it has validation data; what it measures is the hooks'
        # BLEU on these sentences
        validation_set = (self._token_batches(validation_sample, filter_lengths=False)
                          if len(validation_sample) else None)
        torch.manual_seed(config.train.seed)
        self.net = self._new_net()
        mean_target = train_set.target_tokens() / len(train_set)
        average = (WeightAverage(config.average_checkpoints,
                                 None if run is None else run.work, resumed)
                   if config.average_checkpoints > 1 else None)
        hooks = _TrainingHooks(self, validation_sample, average)
        training_started = time.monotonic()
        result = fit(self.net, train_set, translation_loss(config.label_smoothing, mean_target),
                     config.train, val_data=validation_set,
                     run_dir=None if run is None else run.work, resume=resumed,
                     collate_fn=train_set.collate, hooks=hooks, started=started,
                     final_passes=2)
        seconds = time.monotonic() - training_started
        self.net.to("cpu").eval()
        tokens = _tokens_trained(result, train_set)
        best, averaged = None, None
        if validation_set is not None:  # the best epoch's weights, then their rival
            best = hooks.scores(self.net)
            averaged = self._try_average(average, best, hooks)
        report = FitReport(result, {name: len(part) for name, part in parts.items()}
                           | {"train": len(train_set)}, best,
                           tokens / max(seconds, 1e-9))
        self.metrics = {"validation_greedy": best, "checkpoint_average": averaged,
                        "training": {"steps": result.steps, "seconds": seconds,
                                     "target_tokens": tokens,
                                     "target_tokens_per_second": report.target_tokens_per_second,
                                     "stop_reason": result.stop_reason,
                                     "best_epoch": result.best_epoch},
                        "pairs": report.pairs}
        return report

    def _try_average(self, average: WeightAverage | None, best: dict[str, float],
                     hooks: _TrainingHooks) -> dict[str, Any] | None:
        """Keep the averaged weights of the last epochs if they translate the validation
        sentences better than the best epoch's; say what was compared."""
        weights = None if average is None else average.average()
        if weights is None:
            return None
        net = self._require_net()
        kept = {k: v.clone() for k, v in net.state_dict().items()}
        net.load_state_dict(weights)
        scores = hooks.scores(net)
        chosen = scores["BLEU"] > best["BLEU"]
        if chosen:
            best.update(scores)
        else:
            net.load_state_dict(kept)
        logger.info("average of epochs %s: validation BLEU %.2f (%s)", average.epochs(),
                    scores["BLEU"], "kept" if chosen else "the best epoch's is kept")
        return {"epochs": average.epochs(), "validation_greedy": scores, "kept": chosen}

    def _parts(self, data: ParallelData, validation: ParallelData | None,
               source_column: str | None, target_column: str | None) -> dict[str, ParallelText]:
        """The training, validation and test parts; remembers where they came from."""
        config = self.config
        text = _as_parallel(data, source_column, target_column)
        self.data = {"paths": _paths_of(data), "source_column": source_column,
                     "target_column": target_column, "fingerprint": _fingerprint(data)}
        if validation is None:
            parts = split_by_source(text, config.validation_fraction, config.test_fraction)
        else:
            held_out = _as_parallel(validation, source_column, target_column)
            seen = {s.strip().lower() for s in held_out.sources}
            keep = [n for n, s in enumerate(text.sources) if s.strip().lower() not in seen]
            if len(keep) < len(text):
                logger.info("left out %d training pair(s) whose source is in the validation "
                            "data", len(text) - len(keep))
            parts = {"train": text.subset(keep), "validation": held_out,
                     "test": ParallelText([], [], "none")}
            self.data["validation_paths"] = _paths_of(validation)
        # the same pair twice teaches nothing new and weighs it double
        unique = list(dict.fromkeys(zip(parts["train"].sources, parts["train"].targets)))
        parts["train"] = ParallelText([s for s, _ in unique], [t for _, t in unique],
                                      parts["train"].name)
        return parts

    def _build_tokenizers(self, text: ParallelText) -> None:
        c = self.config
        options = {"vocab_size": c.vocab_size, "lowercase": c.lowercase,
                   "specials": (BOS, EOS)}
        if c.shared_vocabulary:
            shared = build_tokenizer(c.tokenizer, text.sources + text.targets, **options)
            self.source_tokenizer = self.target_tokenizer = shared
        else:
            self.source_tokenizer = build_tokenizer(c.tokenizer, text.sources, **options)
            self.target_tokenizer = build_tokenizer(c.tokenizer, text.targets, **options)

    def _write_tokenizers(self, directory: Path) -> None:
        source, target = self._require_tokenizers()
        source.save(directory / SOURCE_TOKENIZER_FILE)
        if not self.config.shared_vocabulary:
            target.save(directory / TARGET_TOKENIZER_FILE)

    def _token_batches(self, text: ParallelText, filter_lengths: bool) -> TokenBatches:
        source_tokenizer, target_tokenizer = self._require_tokenizers()
        sources = source_tokenizer.encode_many(text.sources)
        targets = target_tokenizer.encode_many(text.targets)
        if filter_lengths:
            c = self.config
            keep = [n for n, (s, t) in enumerate(zip(sources, targets))
                    if 0 < len(s) <= c.max_length and 0 < len(t) <= c.max_length
                    and max(len(s), len(t)) <= c.max_length_ratio * min(len(s), len(t))]
            if not keep:
                raise LstmkitError(
                    f"no training pair is within --max-length {c.max_length} tokens and "
                    f"--max-length-ratio {c.max_length_ratio}; raise them")
            if len(keep) < len(sources):
                logger.info("left out %d of %d training pairs longer than %d tokens or with "
                            "lengths differing more than %g times", len(sources) - len(keep),
                            len(sources), c.max_length, c.max_length_ratio)
            sources = [sources[n] for n in keep]
            targets = [targets[n] for n in keep]
        batch_tokens = self.config.train.batch_size
        if not filter_lengths:  # held-out pairs are all kept, however long
            batch_tokens = max(batch_tokens, *(max(len(s), len(t) + 1)
                                               for s, t in zip(sources, targets)))
        return TokenBatches(sources, targets, batch_tokens, target_tokenizer.token_to_id(BOS),
                            target_tokenizer.token_to_id(EOS))

    def _new_net(self) -> TranslationNet:
        source, target = self._require_tokenizers()
        return TranslationNet(source.vocab_size, target.vocab_size, self.config)

    # ---------------------------------------------------------------- translating

    def stream(self, sentences: Iterable[str], *, beam_size: int | None = None,
               n_best: int = 1, ensemble: Sequence[Translator] = (),
               source_language: str | None = None, target_language: str | None = None,
               chunk_size: int = STREAM_CHUNK) -> Iterator[list[Hypothesis]]:
        """Translate ``sentences`` one after another, yielding each one's ``n_best``
        hypotheses (best first) in input order as soon as its chunk of ``chunk_size``
        sentences is done (1 for someone typing). ``ensemble``: more translators of the
        same language pair and target vocabulary, decoding together with this one.
        Languages, when given, must be the ones the model was trained for."""
        members = [self, *ensemble]
        self._check_members(members, source_language, target_language)
        beam = self.config.beam_size if beam_size is None else beam_size
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise LstmkitError(f"--beam-size must be a whole number of at least 1, got {beam!r}")
        if not 1 <= n_best <= beam:
            raise LstmkitError(f"--n-best must lie in 1..--beam-size ({beam}), got {n_best}")
        chunk: list[str] = []
        for sentence in sentences:
            chunk.append(sentence)
            if len(chunk) >= chunk_size:
                yield from self._translate_chunk(chunk, members, beam, n_best)
                chunk = []
        if chunk:
            yield from self._translate_chunk(chunk, members, beam, n_best)

    def translate(self, sentences: str | Iterable[str], **options: Any) -> str | list[str]:
        """The best translation of one sentence, or of each of several (see
        :meth:`stream` for the options)."""
        if isinstance(sentences, str):
            return self.translate([sentences], **options)[0]
        return [self.decode(best[0]) for best in self.stream(sentences, **options)]

    def decode(self, hypothesis: Hypothesis) -> str:
        """The detokenised text of a hypothesis."""
        return self._require_tokenizers()[1].decode(hypothesis.tokens)

    def greedy_translations(self, sentences: list[str]) -> list[str]:
        """Greedy translations, without warnings about unusual input (the validation
        during training)."""
        decode = self._require_tokenizers()[1].decode
        return [decode(found[0].tokens) for start in range(0, len(sentences), STREAM_CHUNK)
                for found in self._translate_chunk(sentences[start:start + STREAM_CHUNK],
                                                   [self], 1, 1, warn=False)]

    def _translate_chunk(self, chunk: list[str], members: list[Translator], beam: int,
                         n_best: int, keep_attention: bool = False, warn: bool = True
                         ) -> list[list[Hypothesis]]:
        source_tokenizer, target_tokenizer = self._require_tokenizers()
        encoded = source_tokenizer.encode_many([s.strip() for s in chunk])
        if warn:
            self._warn_unusual(chunk, encoded)
        results: list[list[Hypothesis]] = [[] for _ in chunk]
        order = sorted(range(len(chunk)), key=lambda n: len(encoded[n]))
        nonempty = [n for n in order if encoded[n]]
        for n in order:
            if not encoded[n]:  # an empty line translates to an empty line
                results[n] = [Hypothesis([], 0.0, 0.0)]
        for start in range(0, len(nonempty), DECODE_BATCH):
            rows = nonempty[start:start + DECODE_BATCH]
            lengths = torch.tensor([len(encoded[n]) for n in rows])
            source = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
            for b, n in enumerate(rows):
                source[b, :len(encoded[n])] = torch.tensor(encoded[n])
            found = beam_search([m._require_net() for m in members], source, lengths,
                                beam_size=beam, bos_id=target_tokenizer.token_to_id(BOS),
                                eos_id=target_tokenizer.token_to_id(EOS),
                                alpha=self.config.length_penalty,
                                max_output_ratio=self.config.max_output_ratio, n_best=n_best,
                                keep_attention=keep_attention)
            for n, hypotheses in zip(rows, found):
                results[n] = hypotheses
        return results

    def _warn_unusual(self, chunk: list[str], encoded: list[list[int]]) -> None:
        unknown = sum(ids.count(UNK_ID) for ids in encoded)
        if unknown:
            logger.warning("%d piece(s) of the input are not in the model's vocabulary (unknown "
                           "characters or words); they are read as <unk>", unknown)
        longest = max((len(ids) for ids in encoded), default=0)
        if self.longest_source and longest > self.longest_source:
            logger.warning("a sentence has %d tokens, more than any the model was trained on "
                           "(%d); its translation may break off or repeat: split long "
                           "sentences", longest, self.longest_source)

    def _check_members(self, members: list[Translator], source_language: str | None,
                       target_language: str | None) -> None:
        for given, trained, option in ((source_language, self.config.source_language,
                                        "--source-language"),
                                       (target_language, self.config.target_language,
                                        "--target-language")):
            if given is not None and trained is not None and given != trained:
                raise LstmkitError(
                    f"the model translates {self.config.source_language} -> "
                    f"{self.config.target_language}, not {option} {given}; use a model "
                    "trained for that pair")
        target = self._require_tokenizers()[1].to_json()
        for other in members[1:]:
            if other._require_tokenizers()[1].to_json() != target or (
                    (other.config.source_language, other.config.target_language)
                    != (self.config.source_language, self.config.target_language)):
                raise LstmkitError("the models of an ensemble must translate the same language "
                                   "pair with the same target vocabulary (train them on the "
                                   "same data with the same --vocab-size and --tokenizer)")

    # ---------------------------------------------------------------- measuring

    def evaluate(self, data: ParallelData | None = None, *, part: str = "test",
                 beam_size: int | None = None, ensemble: Sequence[Translator] = (),
                 source_column: str | None = None, target_column: str | None = None,
                 limit: int | None = None, source_language: str | None = None,
                 target_language: str | None = None) -> Evaluation:
        """BLEU and chrF on ``data`` (all of it), or by default on ``part`` ("validation"
        or "test") of the data the model was trained on, beside copying the source; the
        translations are in ``details["translations"]``. ``limit``: the first sentences
        only."""
        self._check_members([self, *ensemble], source_language, target_language)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise LstmkitError(f"--limit must be a whole number of at least 1, got {limit!r}")
        if data is None:
            text = self.training_part(part)
        else:
            text = _as_parallel(data, source_column, target_column)
        if limit is not None:
            text = text.subset(range(min(limit, len(text))))
        if len(text) == 0:
            raise LstmkitError(f"{text.name} holds no sentence pairs to evaluate on")
        beam = self.config.beam_size if beam_size is None else beam_size
        translations = self.translate(text.sources, beam_size=beam, ensemble=ensemble)
        evaluation = evaluation_of(text.name, text.sources, text.targets, translations, beam)
        if ensemble:
            evaluation.labels["model"] = f"ensemble of {1 + len(ensemble)}"
        evaluation.details["translations"] = translations
        return evaluation

    def training_part(self, part: str) -> ParallelText:
        """A held-out part of the data the model was trained on, checked unchanged."""
        if part not in ("validation", "test"):
            raise LstmkitError(f"part must be 'validation' or 'test', got {part!r} (--part)")
        if self.data is None or self.data["paths"] is None:
            raise LstmkitError("the model does not know its training data (it was given pairs "
                               "in memory); pass pairs with --data")
        if part == "test" and "validation_paths" in self.data:
            raise LstmkitError("the model was trained with separate validation data and no "
                               "test part; pass the test pairs with --data")
        if _fingerprint(self.data["paths"]) != self.data["fingerprint"]:
            raise LstmkitError("the training data changed since the model was trained, so its "
                               "held-out part is no longer known; pass pairs with --data")
        text = read_parallel(self.data["paths"], self.data["source_column"],
                             self.data["target_column"])
        return split_by_source(text, self.config.validation_fraction,
                               self.config.test_fraction)[part]

    # ---------------------------------------------------------------- inspecting

    def align(self, source: str, target: str | None = None) -> Alignment:
        """The attention of each target piece over the source pieces: of the model's own
        translation, or (``target``) of a given one, read by teacher forcing."""
        source_tokenizer, target_tokenizer = self._require_tokenizers()
        source_ids = source_tokenizer.encode(source.strip())
        if not source_ids:
            raise LstmkitError("the sentence to inspect is empty (--text)")
        if target is None:
            best = self._translate_chunk([source], [self], self.config.beam_size, 1,
                                         keep_attention=True)[0][0]
            target_ids, weights = best.tokens, best.attention
        else:
            target_ids = target_tokenizer.encode(target.strip())
            weights = self._forced_attention(source_ids, target_ids)
        # each piece as text (byte-level BPE spells bytes with stand-in characters)
        return Alignment([source_tokenizer.decode([i]) for i in source_ids],
                         [target_tokenizer.decode([i]) for i in target_ids] + [EOS],
                         weights, target_tokenizer.decode(target_ids))

    @torch.no_grad()
    def _forced_attention(self, source_ids: list[int], target_ids: list[int]) -> torch.Tensor:
        net = self._require_net().eval()
        target_tokenizer = self._require_tokenizers()[1]
        encoded = net.encode(torch.tensor([source_ids]), torch.tensor([len(source_ids)]))
        state, stepper, rows = net.initial_state(encoded), net.stepper(), []
        for token in [target_tokenizer.token_to_id(BOS), *target_ids]:
            step = net.step(stepper, torch.tensor([token]), state, encoded, 1)
            state = step.state
            rows.append(step.attention[0])
        return torch.stack(rows)  # (T + 1, S)

    # ---------------------------------------------------------------- saving

    def _write(self, directory: Path) -> None:
        net = self._require_net()
        write_config(directory, TASK, {"translation": self.config.to_json(),
                                       "data": self.data,
                                       "longest_source": self.longest_source})
        self._write_tokenizers(directory)
        save_weights(directory / MODEL_FILE, net.state_dict())
        atomic_write_json(directory / METRICS_FILE, self.metrics)

    @classmethod
    def _read(cls, run: FinishedRun) -> Translator:
        saved = run.config
        model = cls(TranslationConfig.from_json(saved["translation"]))
        model.data, model.longest_source = saved["data"], saved["longest_source"]
        model.source_tokenizer, model.target_tokenizer = _read_tokenizers(
            run.json, model.config.shared_vocabulary)
        weights = run.weights(MODEL_FILE, model._new_net)
        model.net = model._new_net()
        model.net.load_state_dict(weights)
        model.net.eval()
        model.metrics = run.json(METRICS_FILE) if run.has(METRICS_FILE) else {}
        return model

    def _require_tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        if self.source_tokenizer is None or self.target_tokenizer is None:
            raise LstmkitError("the translator is not trained: call fit or load a run first")
        return self.source_tokenizer, self.target_tokenizer

    def _require_net(self) -> TranslationNet:
        if self.net is None:
            raise LstmkitError("the translator is not trained: call fit or load a run first")
        return self.net


class _TrainingHooks:
    """What the training loop asks of the translator: the validation criterion, -BLEU
    (ties broken by chrF) of greedy translations of the validation sentences, so early
    stopping and the best epoch follow translation quality, not the loss; and, at each
    epoch's end, a snapshot for checkpoint averaging."""

    def __init__(self, translator: Translator, text: ParallelText,
                 average: WeightAverage | None) -> None:
        self.translator, self.text, self.average = translator, text, average

    def scores(self, model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        translations = self.translator.greedy_translations(self.text.sources)
        model.train(was_training)
        return corpus_scores(translations, self.text.targets)

    def validation_loss(self, model: torch.nn.Module) -> float:
        scores = self.scores(model)
        logger.info("validation BLEU %.2f, chrF %.2f (greedy, %d sentences)", scores["BLEU"],
                    scores["chrF"], len(self.text))
        # short sentences can all score BLEU 0 (no 4-gram in common) early on: chrF,
        # scaled below BLEU's resolution, breaks such ties
        return -(scores["BLEU"] + scores["chrF"] / 1000)

    def on_epoch_end(self, epoch: int, model: torch.nn.Module) -> None:
        if self.average is not None:
            self.average.on_epoch_end(epoch, model)


def _read_tokenizers(read: Any, shared: bool) -> tuple[Tokenizer, Tokenizer]:
    source = tokenizer_from_json(read(SOURCE_TOKENIZER_FILE))
    target = source if shared else tokenizer_from_json(read(TARGET_TOKENIZER_FILE))
    return source, target


def _tokens_trained(result: TrainResult, train_set: TokenBatches) -> int:
    """Target tokens the steps went through (whole epochs, and the share of a stopped
    one by its steps)."""
    per_epoch = train_set.target_tokens()
    steps_per_epoch = len(train_set.batch_plan(torch.arange(len(train_set)).numpy()))
    return int(result.steps * per_epoch / max(steps_per_epoch, 1))


def _as_parallel(data: ParallelData, source_column: str | None,
                 target_column: str | None) -> ParallelText:
    if isinstance(data, ParallelText):
        return data
    return read_parallel(data, source_column, target_column)


def _paths_of(data: ParallelData) -> list[str] | None:
    if isinstance(data, ParallelText):
        return None
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    return [str(Path(p).resolve()) for p in paths]


def _fingerprint(data: ParallelData | list[str] | None) -> str | None:
    """SHA-256 of the data files' bytes (None for pairs given in memory)."""
    if data is None or isinstance(data, ParallelText):
        return None
    digest = hashlib.sha256()
    for path in _paths_of(data) or []:
        try:
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):  # noqa: B023
                    digest.update(block)
        except OSError as error:
            raise LstmkitError(f"cannot read the training data {path} ({error.strerror}); "
                               "pass pairs with --data") from None
    return digest.hexdigest()
