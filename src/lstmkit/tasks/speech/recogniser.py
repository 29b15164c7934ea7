"""The Recogniser task: a SpeechNet trained with CTC on transcribed audio; fit,
transcribe (greedy or prefix beam search, optional character-LM fusion, word times),
stream, evaluate (WER and CER with jiwer), save, load.

A run directory holds ``config.json`` (task "speech", the data it was trained on),
``model.safetensors`` (weights and the feature normalisation), ``metrics.json``, and
the training loop's checkpoint and log.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jiwer
import numpy as np
import torch
from torch import Tensor

from lstmkit.data.audio import (
    cached_log_mel,
    default_cache_dir,
    log_mel,
    read_audio,
    silent,
)
from lstmkit.data.audio_augment import add_noise, spec_augment, speed_perturb
from lstmkit.data.length_buckets import size_budgeted_batches
from lstmkit.data.speech_data import SpeechData, read_speech_data, split_by_sentence
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.tasks.lifecycle import Evaluation, Task
from lstmkit.tasks.speech.config import TASK, SpeechConfig
from lstmkit.tasks.speech.decoding import (
    Hypothesis,
    LanguageScorer,
    Word,
    greedy_decode,
    prefix_beam_search,
    text_to_tokens,
    transcript_text,
    word_timestamps,
)
from lstmkit.tasks.speech.network import SpeechNet, ctc_loss
from lstmkit.train import TrainResult, fit

if TYPE_CHECKING:
    from lstmkit.tasks.speech.streaming import SpeechStream

logger = logging.getLogger("lstmkit.speech")

MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
DECODE_FRAMES = 60000
"""Feature frames run through the network side by side when transcribing many files."""

Audio = str | Path | Tensor
SpeechSource = SpeechData | str | Path


@dataclass
class Transcript:
    """What a recording says: the text, each word's start and end (seconds), the
    recording's length and the seconds it took to recognise."""

    text: str
    words: list[Word] = field(default_factory=list)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0


@dataclass
class FitReport:
    """What :meth:`Recogniser.fit` did: the loop's result, the recordings in each part,
    the hours of audio trained on (augmented copies included), the best validation
    error rates (greedy decoding)."""

    result: TrainResult
    recordings: dict[str, int]
    training_hours: float
    validation: dict[str, float] | None

    def summary(self) -> str:
        lines = [f"trained {self.result.steps} steps on {self.recordings['train']:,} "
                 f"recordings ({self.training_hours:.2f} h of audio per epoch), stopped: "
                 f"{self.result.stop_reason}, best epoch {self.result.best_epoch}"]
        if self.validation:
            lines.append("validation (greedy): " + ", ".join(
                f"{name} {value:.2%}" for name, value in self.validation.items()))
        return "\n".join(lines)


class FrameBatches(torch.utils.data.Dataset):
    """Recordings' log-mel frames and their token ids, batched by frames: the training
    loop's data. With ``augment`` (a SpeechConfig) each batch is SpecAugmented as it is
    collated, from torch's generator (which the loop seeds per step, so a resumed run
    draws the same masks)."""

    def __init__(self, features: list[Tensor], targets: list[list[int]], batch_frames: int,
                 augment: SpeechConfig | None = None) -> None:
        self.features, self.targets = features, targets
        self.batch_frames, self.augment = batch_frames, augment
        self.sizes = np.array([len(f) for f in features])
        longest = int(self.sizes.max()) if len(self.sizes) else 0
        if longest > batch_frames:
            raise LstmkitError(f"a training recording has {longest} feature frames, more than "
                               f"a whole batch of --batch-size {batch_frames} frames; raise "
                               "--batch-size")

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> tuple[Tensor, list[int]]:
        return self.features[index], self.targets[index]

    def batch_plan(self, order: np.ndarray) -> list[np.ndarray]:
        return size_budgeted_batches(self.sizes, order, self.batch_frames)

    def collate(self, items: list[tuple[Tensor, list[int]]]
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Padded frames (T, B, n_mels), frame counts, the transcripts' ids end to end,
        their lengths."""
        frames = [f for f, _ in items]
        if self.augment is not None:
            c = self.augment
            generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
            frames = [spec_augment(f, generator, c.frequency_masks, c.frequency_mask_width,
                                   c.time_masks, c.time_mask_fraction) for f in frames]
        lengths = torch.tensor([len(f) for f in frames])
        padded = torch.nn.utils.rnn.pad_sequence(frames)  # (T, B, n_mels)
        targets = torch.tensor([t for _, ids in items for t in ids], dtype=torch.long)
        return padded, lengths, targets, torch.tensor([len(ids) for _, ids in items])


class Recogniser(Task):
    """Speech recognition: an LSTM acoustic model trained with CTC over characters."""

    task = TASK

    def __init__(self, config: SpeechConfig | None = None) -> None:
        self.config = config or SpeechConfig()
        self.net: SpeechNet | None = None
        self.data: dict[str, Any] | None = None  # what it was trained on, to find its parts
        self.metrics: dict[str, Any] = {}

    # ---------------------------------------------------------------- training

    def fit(self, data: SpeechSource, run_dir: str | Path | None = None, *,
            resume: bool = False, overwrite: bool = False,
            validation: SpeechSource | None = None,
            cache_dir: str | Path | None = None) -> FitReport:
        """Learn from transcribed audio (a manifest or a folder: see
        :mod:`lstmkit.data.speech_data`).

        Without ``validation`` the data is split by sentence into training, validation
        and test parts; with it, all of ``data`` trains. Features are cached in
        ``cache_dir`` (default ``$LSTMKIT_CACHE`` or ~/.cache/lstmkit) so a corpus is
        analysed once. With ``run_dir`` the run directory is written by the lifecycle's
        rules; ``resume`` continues an interrupted run.
        """
        return super().fit(data, run_dir, resume=resume, overwrite=overwrite,
                           validation=validation, cache_dir=cache_dir)

    def _fit(self, data: SpeechSource, run: Run | None, started: float,
             validation: SpeechSource | None = None,
             cache_dir: str | Path | None = None) -> FitReport:
        config = self.config
        config.validate()
        parts = self._parts(data, validation)
        fix = "normalise the transcripts or give the characters with --alphabet"
        for part in parts.values():
            part.check_alphabet(config.alphabet, fix)
        train, held_out = parts["train"], parts["validation"]
        if len(train) == 0:
            raise LstmkitError(f"{train.name} leaves no recordings to train on")
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        features = self._features(train, cache)
        targets = [text_to_tokens(t, config.alphabet) for t in train.transcripts]
        kept = self._trainable(train, features, targets)
        train = train.subset(kept)
        features, targets = [features[k] for k in kept], [targets[k] for k in kept]
        torch.manual_seed(config.train.seed)
        self.net = self._new_net()
        self.net.set_normalisation(torch.cat(features))
        recordings = len(train)
        features, targets = self._augmented(train, features, targets)
        train_set = FrameBatches(features, targets, config.train.batch_size, augment=config)
        validation_part = held_out.subset(list(range(min(len(held_out),
                                                         config.validation_utterances))))
        validation_set = None
        if len(validation_part):
            validation_features = self._features(validation_part, cache)
            validation_set = FrameBatches(
                validation_features,
                [text_to_tokens(t, config.alphabet) for t in validation_part.transcripts],
                max(config.train.batch_size, max(len(f) for f in validation_features)))
        hooks = _TrainingHooks(self, validation_set, validation_part.transcripts)
        result = fit(self.net, train_set, ctc_loss, config.train, val_data=validation_set,
                     run_dir=None if run is None else run.work,
                     resume=run is not None and run.resumed, collate_fn=train_set.collate,
                     hooks=hooks, started=started, final_passes=1)
        self.net.eval()
        best = hooks.scores() if validation_set is not None else None
        hours = float(train_set.sizes.sum()) * self.config.feature_config.frame_seconds / 3600
        report = FitReport(result, {name: len(part) for name, part in parts.items()}
                           | {"train": recordings}, hours, best)
        self.metrics = {"validation_greedy": best, "recordings": report.recordings,
                        "training": {"steps": result.steps, "seconds": result.seconds,
                                     "hours_per_epoch": hours,
                                     "stop_reason": result.stop_reason,
                                     "epochs": result.epochs_run,
                                     "best_epoch": result.best_epoch}}
        return report

    def _parts(self, data: SpeechSource, validation: SpeechSource | None
               ) -> dict[str, SpeechData]:
        """The training parts, and a record of where they came from (for evaluate)."""
        speech = read_speech_data(data)
        self.data = {"source": (None if isinstance(data, SpeechData)
                                else str(Path(data).resolve())),
                     "fingerprint": _fingerprint(speech), "split": validation is None}
        if validation is None:
            return split_by_sentence(speech, self.config.validation_fraction,
                                     self.config.test_fraction)
        return {"train": speech, "validation": read_speech_data(validation)}

    def _features(self, data: SpeechData, cache: Path) -> list[Tensor]:
        return cached_log_mel(data.paths, self.config.feature_config, cache)

    def _trainable(self, data: SpeechData, features: list[Tensor], targets: list[list[int]]
                   ) -> list[int]:
        """The recordings to train on: refuse silent ones; leave out those too short for
        their transcript (see :meth:`_fits`)."""
        floor = float(np.log(self.config.feature_config.log_floor))
        quiet = [p for p, f in zip(data.paths, features) if float(f.max()) <= floor + 1e-3]
        if quiet:
            raise LstmkitError(f"{len(quiet)} training recording(s) are silent (e.g. "
                               f"{quiet[0]}); leave them out of the data")
        kept = [k for k, (f, t) in enumerate(zip(features, targets)) if self._fits(f, t)]
        if len(kept) < len(features):
            short = sorted(set(range(len(features))) - set(kept))
            logger.warning("%d recording(s) are too short for their transcripts at --stack %d "
                           "and are left out of training (e.g. %s)", len(short),
                           self.config.stack, data.paths[short[0]])
        if not kept:
            raise LstmkitError("every training recording is too short for its transcript; "
                               "lower --stack")
        return kept

    def _fits(self, features: Tensor, target: list[int]) -> bool:
        """Whether CTC can align ``target`` to these frames: a step per character, and one
        more between repeated characters."""
        steps = -(-len(features) // self.config.stack)
        return steps >= len(target) + sum(a == b for a, b in zip(target, target[1:]))

    def _augmented(self, data: SpeechData, features: list[Tensor], targets: list[list[int]]
                   ) -> tuple[list[Tensor], list[list[int]]]:
        """The training frames plus copies at other speeds and with noise (computed
        from the audio once per fit, reproducibly from the seed)."""
        c = self.config
        if not c.speeds and c.noise_snr_db is None:
            return features, targets
        feature_config = c.feature_config
        generator = torch.Generator().manual_seed(c.train.seed)
        extra_features, extra_targets = [], []
        for path, ids in zip(data.paths, targets, strict=True):
            wave = read_audio(path, feature_config.sample_rate)
            copies = [speed_perturb(wave, speed, feature_config.sample_rate)
                      for speed in c.speeds]
            if c.noise_snr_db is not None:
                copies.append(add_noise(wave, c.noise_snr_db, generator))
            for copy in copies:
                frames = log_mel(copy, feature_config)
                if self._fits(frames, ids):  # a faster copy may be too short for CTC
                    extra_features.append(frames)
                    extra_targets.append(ids)
        return features + extra_features, targets + extra_targets

    def _new_net(self) -> SpeechNet:
        c = self.config
        return SpeechNet(c.feature_config.n_mels, c.stack, c.hidden_size, c.num_layers,
                         c.bidirectional, c.vocabulary_size, c.dropout, c.lstm)

    # ---------------------------------------------------------------- recognising

    def log_probs(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Each recording's CTC log-probabilities (U, V), batched by frames."""
        net = self._require_net().eval()
        order = sorted(range(len(features)), key=lambda k: len(features[k]))
        found: list[Tensor | None] = [None] * len(features)
        start = 0
        with torch.no_grad():
            while start < len(order):
                end = start + 1
                while (end < len(order)
                       and len(features[order[end]]) * (end - start + 1) <= DECODE_FRAMES):
                    end += 1
                chunk = order[start:end]
                padded = torch.nn.utils.rnn.pad_sequence([features[k] for k in chunk])
                lengths = torch.tensor([len(features[k]) for k in chunk])
                log_probs, steps = net(padded, lengths)  # (U, B, V)
                for b, k in enumerate(chunk):
                    found[k] = log_probs[:int(steps[b]), b].clone()
                start = end
        return found  # type: ignore[return-value]

    def decode(self, log_probs: Tensor, beam_size: int | None = None,
               language_model: LanguageScorer | None = None,
               lm_weight: float = 0.0) -> Hypothesis:
        """The best labelling of one recording's log-probabilities (U, V)."""
        beam = self.config.beam_size if beam_size is None else beam_size
        if beam < 1:
            raise LstmkitError(f"--beam-size must be at least 1, got {beam}")
        if not math.isfinite(lm_weight) or lm_weight < 0:
            raise LstmkitError(f"--lm-weight must be a number of 0 or more, got {lm_weight}")
        if beam == 1 and language_model is None:
            return greedy_decode(log_probs)
        return prefix_beam_search(log_probs, beam_size=beam, scorer=language_model,
                                  lm_weight=lm_weight if language_model is not None else 0.0)[0]

    def transcript(self, hypothesis: Hypothesis, audio_seconds: float = 0.0,
                   compute_seconds: float = 0.0) -> Transcript:
        c = self.config
        step_seconds = c.feature_config.frame_seconds * c.stack
        return Transcript(transcript_text(hypothesis.tokens, c.alphabet),
                          word_timestamps(hypothesis, c.alphabet, step_seconds),
                          audio_seconds, compute_seconds)

    def transcribe(self, audio: Audio | Sequence[Audio], *, beam_size: int | None = None,
                   language_model: LanguageScorer | None = None, lm_weight: float = 0.5
                   ) -> Transcript | list[Transcript]:
        """What a recording says (a file, or a 16 kHz waveform tensor), or a list of
        them; silence gives an empty transcript, with a warning."""
        one = isinstance(audio, (str, Path, Tensor))
        items = [audio] if one else list(audio)
        sample_rate = self.config.feature_config.sample_rate
        transcripts = []
        for item in items:
            started = time.perf_counter()
            wave = read_audio(item, sample_rate) if not isinstance(item, Tensor) else item
            seconds = len(wave) / sample_rate
            if silent(wave):
                logger.warning("%s is silent: nothing to transcribe",
                               item if not isinstance(item, Tensor) else "the audio")
                transcripts.append(Transcript("", [], seconds, time.perf_counter() - started))
                continue
            log_probs = self.log_probs([log_mel(wave, self.config.feature_config)])[0]
            best = self.decode(log_probs, beam_size, language_model, lm_weight)
            transcripts.append(self.transcript(best, seconds, time.perf_counter() - started))
        return transcripts[0] if one else transcripts

    def stream(self) -> SpeechStream:
        """A streaming session: push audio as it comes, read partial transcripts (see
        :class:`lstmkit.tasks.speech.streaming.SpeechStream`)."""
        from lstmkit.tasks.speech.streaming import SpeechStream

        return SpeechStream(self)

    # ---------------------------------------------------------------- evaluating

    def evaluate(self, data: SpeechSource | None = None, *, part: str = "test",
                 beam_size: int | None = None, language_model: LanguageScorer | None = None,
                 lm_weight: float = 0.5, limit: int | None = None,
                 cache_dir: str | Path | None = None) -> Evaluation:
        """Word and character error rates (jiwer) on ``data``, or by default on ``part``
        of the data the model was trained on, beside greedy decoding; with a language
        model, beside the beam without it. The transcripts are in
        ``details["transcripts"]``."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise LstmkitError(f"--limit must be a whole number of at least 1, got {limit!r}")
        speech = self.training_part(part) if data is None else read_speech_data(data)
        if limit is not None:
            speech = speech.subset(list(range(min(limit, len(speech)))))
        if len(speech) == 0:
            raise LstmkitError(f"{speech.name} holds no recordings to evaluate on")
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        started = time.perf_counter()
        log_probs = self.log_probs(self._features(speech, cache))
        network_seconds = time.perf_counter() - started
        audio_seconds = sum(len(lp) for lp in log_probs) * (
            self.config.feature_config.frame_seconds * self.config.stack)
        beam = self.config.beam_size if beam_size is None else beam_size
        ways = {"model": (beam, language_model), "greedy": (1, None)}
        if language_model is not None:
            ways["no_lm"] = (beam, None)
        rows, labels, texts = {}, {}, {}
        for name, (width, scorer) in ways.items():
            if name == "greedy" and width == beam and scorer is None and "model" in texts:
                continue
            started = time.perf_counter()
            texts[name] = [transcript_text(self.decode(lp, width, scorer, lm_weight).tokens,
                                          self.config.alphabet) for lp in log_probs]
            seconds = network_seconds + time.perf_counter() - started
            rows[name] = _error_rates(speech.transcripts, texts[name])
            rows[name]["real-time factor"] = seconds / max(audio_seconds, 1e-9)
            labels[name] = (("greedy" if width == 1 else f"beam {width}")
                            + (f" + LM x{lm_weight}" if scorer is not None else ""))
        labels["model"] = "lstmkit " + labels["model"]
        return Evaluation(TASK, f"{speech.name}: {len(speech)} recordings, "
                                f"{audio_seconds / 60:.1f} min", rows, labels,
                          lower_is_better=["WER", "CER", "real-time factor"],
                          notes=["WER and CER: word and character error rates (jiwer); the "
                                 "real-time factor is compute seconds per second of audio"],
                          details={"transcripts": texts["model"],
                                   "references": speech.transcripts})

    def training_part(self, part: str) -> SpeechData:
        """A held-out part of the data the model was trained on, checked unchanged."""
        if part not in ("validation", "test"):
            raise LstmkitError(f"part must be 'validation' or 'test', got {part!r} (--part)")
        if self.data is None or self.data["source"] is None:
            raise LstmkitError("the model does not know its training data (it was given "
                               "recordings in memory); pass recordings with --data")
        if not self.data["split"]:
            raise LstmkitError("the model was trained with separate validation data and no "
                               "test part; pass the test recordings with --data")
        speech = read_speech_data(self.data["source"])
        if _fingerprint(speech) != self.data["fingerprint"]:
            raise LstmkitError("the training data changed since the model was trained, so its "
                               "held-out part is no longer known; pass recordings with --data")
        return split_by_sentence(speech, self.config.validation_fraction,
                                 self.config.test_fraction)[part]

    # ---------------------------------------------------------------- saving

    def _write(self, directory: Path) -> None:
        write_config(directory, TASK, {"speech": self.config.to_json(), "data": self.data})
        save_weights(directory / MODEL_FILE, self._require_net().state_dict())
        atomic_write_json(directory / METRICS_FILE, self.metrics)

    @classmethod
    def _read(cls, run: FinishedRun) -> Recogniser:
        saved = run.config
        model = cls(SpeechConfig.from_json(saved["speech"]))
        model.data = saved["data"]
        weights = run.weights(MODEL_FILE, model._new_net)
        model.net = model._new_net()
        model.net.load_state_dict(weights)
        model.net.eval()
        model.metrics = run.json(METRICS_FILE) if run.has(METRICS_FILE) else {}
        return model

    def _require_net(self) -> SpeechNet:
        if self.net is None:
            raise LstmkitError("the recogniser is not trained: call fit or load a run first")
        return self.net


class _TrainingHooks:
    """What the training loop asks of the recogniser: the validation criterion, the
    greedy character error rate on the validation recordings, so early stopping and
    the best epoch follow recognition, not the loss."""

    def __init__(self, recogniser: Recogniser, data: FrameBatches | None,
                 references: list[str]) -> None:
        self.recogniser, self.data, self.references = recogniser, data, references

    def scores(self) -> dict[str, float]:
        net = self.recogniser._require_net()
        was_training = net.training
        log_probs = self.recogniser.log_probs(self.data.features)
        net.train(was_training)
        alphabet = self.recogniser.config.alphabet
        texts = [transcript_text(greedy_decode(lp).tokens, alphabet) for lp in log_probs]
        return _error_rates(self.references, texts)

    def validation_loss(self, model: torch.nn.Module) -> float:
        scores = self.scores()
        logger.info("validation CER %.2f%%, WER %.2f%% (greedy, %d recordings)",
                    100 * scores["CER"], 100 * scores["WER"], len(self.references))
        return scores["CER"] + scores["WER"] / 1000  # WER breaks ties


def _error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """WER and CER over the whole set (jiwer; an empty hypothesis counts as deletions)."""
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r]
    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    return {"WER": float(jiwer.wer(refs, hyps)), "CER": float(jiwer.cer(refs, hyps))}


def _fingerprint(speech: SpeechData) -> str:
    """SHA-256 of the recordings' names and transcripts, in order."""
    digest = hashlib.sha256()
    for path, text in zip(speech.paths, speech.transcripts):
        digest.update(f"{path}\t{text}\n".encode())
    return digest.hexdigest()
