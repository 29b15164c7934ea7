"""The LanguageModel task: a tokenizer and a LanguageModelNet trained on a corpus; fit,
evaluate, generate, inspect, save, load, and the encoder it hands to a classifier.

A run directory holds ``config.json`` (task "language_model", the corpus it was
trained on), ``tokenizer.json``, ``model.safetensors``, ``metrics.json``, and the
training loop's checkpoint files and ``log.csv``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmkit.data.token_stream import (
    STDLIB,
    ContiguousBatches,
    Corpus,
    TextSource,
    TokenStream,
    cached_stream,
    stream_length,
    take_characters,
)
from lstmkit.data.tokenizers import (
    PAD_ID,
    TOKENIZER_FILE,
    UNK_ID,
    Tokenizer,
    VocabularyTokenizer,
    build_tokenizer,
    tokenizer_from_json,
)
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, read_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.nn import LSTM, record_gates
from lstmkit.tasks.language_model.config import TASK, LanguageModelConfig
from lstmkit.tasks.language_model.generation import (
    check_sampling,
    next_token_probabilities,
    stop_prefix_length,
)
from lstmkit.tasks.language_model.metrics import (
    evaluate_part,
    evaluation_of,
    unigram_counts,
    unigram_cross_entropy,
)
from lstmkit.tasks.language_model.network import LanguageModelNet, StreamLoss
from lstmkit.tasks.lifecycle import Evaluation, Task
from lstmkit.train import TrainResult, fit

logger = logging.getLogger("lstmkit.lm")

MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
UNIGRAM_FILE = "unigram.safetensors"
TOKENIZER_SAMPLE_CHARACTERS = 50_000_000
"""The tokenizer learns its vocabulary from at most this many characters of the
training part (the whole part for most corpora)."""


@dataclass
class FitReport:
    """What :meth:`LanguageModel.fit` did, and the held-out parts' metrics."""

    result: TrainResult
    validation: Evaluation | None
    test: Evaluation | None
    tokens_trained: int
    tokens_per_second: float  # training throughput, validation passes included

    def summary(self) -> str:
        lines = [f"trained {self.result.steps} steps ({self.tokens_trained:,} tokens, "
                 f"{self.tokens_per_second:,.0f} tokens/s), stopped: {self.result.stop_reason}"]
        lines += [e.table() for e in (self.validation, self.test) if e is not None]
        return "\n".join(lines)


@dataclass
class PretrainedEncoder:
    """A language model's lower half, for a classifier to start from (ULMFiT).

    ``lstm`` is one multi-layer, unidirectional, batch_first lstmkit.nn.LSTM holding
    the language model's layers; ``config`` has its sizes: vocab_size, embedding_dim,
    hidden_size, num_layers, proj_size, tokenizer.
    """

    tokenizer: Tokenizer
    embedding: nn.Embedding
    lstm: LSTM
    config: dict[str, Any]


class LanguageModel(Task):
    """A tokenizer and a :class:`LanguageModelNet`, trained on a corpus of text files."""

    task = TASK

    def __init__(self, config: LanguageModelConfig | None = None) -> None:
        self.config = config or LanguageModelConfig()
        self.tokenizer: Tokenizer | None = None
        self.net: LanguageModelNet | None = None
        self.corpus: dict[str, Any] | None = None  # sources, pattern, fingerprint
        self.unigram: np.ndarray | None = None  # training token counts: the baseline
        self.metrics: dict[str, Any] = {}

    # ---------------------------------------------------------------- training

    def fit(self, text: TextSource = STDLIB, run_dir: str | Path | None = None, *,
            resume: bool = False, overwrite: bool = False,
            cache_dir: str | Path | None = None) -> FitReport:
        """Learn the tokenizer and the network from ``text`` (files, folders or "stdlib").

        With ``run_dir`` the run directory is written by the lifecycle's rules (see
        lstmkit.tasks.lifecycle); ``resume`` continues an interrupted run.
        """
        return super().fit(text, run_dir, resume=resume, overwrite=overwrite,
                           cache_dir=cache_dir)

    def _fit(self, text: TextSource, run: Run | None, started: float,
             cache_dir: str | Path | None = None) -> FitReport:
        config = self.config
        config.validate()
        resumed = run is not None and run.resumed
        corpus = Corpus.scan(text, config.pattern, config.val_fraction, config.test_fraction)
        if resumed:  # the tokenizer the run started with, not one learnt again
            self.tokenizer = tokenizer_from_json(read_json(run.work / TOKENIZER_FILE))
        else:
            self.tokenizer = build_tokenizer(
                config.tokenizer,
                take_characters(corpus.part_texts("train"), TOKENIZER_SAMPLE_CHARACTERS),
                vocab_size=config.vocab_size, min_count=config.min_count,
                lowercase=config.lowercase)
        stream = cached_stream(corpus, self.tokenizer, cache_dir)
        train_set, val_set = self._datasets(stream)
        self.corpus = {"sources": _source_names(text), "pattern": config.pattern,
                       "fingerprint": corpus.fingerprint()}
        if run is not None and run.writer and not resumed:
            self.tokenizer.save(run.work / TOKENIZER_FILE)
        torch.manual_seed(config.train.seed)
        self.net = LanguageModelNet(self.tokenizer.vocab_size, config)
        loss = StreamLoss(config.activation_regularisation,
                          config.temporal_activation_regularisation)
        started = time.monotonic()
        result = fit(self.net, train_set, loss, config.train, val_data=val_set,
                     run_dir=None if run is None else run.work, resume=resumed,
                     started=started, final_passes=2)  # then validation and test parts
        seconds = time.monotonic() - started
        tokens_trained = result.steps * config.train.batch_size * train_set.bptt
        self.unigram = unigram_counts(stream.part("train"), self.tokenizer.vocab_size)
        validation, test = (self._evaluate_stream(stream, part) for part in ("val", "test"))
        self.net.to("cpu")
        report = FitReport(result, validation, test, tokens_trained,
                           tokens_trained / max(seconds, 1e-9))
        self.metrics = {
            "validation": validation.to_json() if validation else None,
            "test": test.to_json() if test else None,
            "training": {"steps": result.steps, "tokens": tokens_trained,
                         "seconds": seconds, "tokens_per_second": report.tokens_per_second,
                         "stop_reason": result.stop_reason, "best_epoch": result.best_epoch},
            "corpus": {"files": len(corpus.files), "characters": stream.characters,
                       "tokens": {part: stop - start
                                  for part, (start, stop) in stream.parts.items()}},
        }
        return report

    def _evaluate_stream(self, stream: TokenStream, part: str, name: str | None = None,
                         batch_size: int = 16) -> Evaluation | None:
        model = evaluate_part(self.net, stream, part, name, batch_size)
        if model is None:
            return None
        unigram = (None if self.unigram is None else unigram_cross_entropy(
            self.unigram, stream.part(part), stream.characters[part], model.name))
        return evaluation_of(model, unigram)

    def _datasets(self, stream: TokenStream) -> tuple[ContiguousBatches, ContiguousBatches | None]:
        batch_size, bptt = self.config.train.batch_size, self.config.bptt
        train = stream.part("train")
        needed = batch_size * bptt + 1
        if len(train) < needed:
            raise LstmkitError(
                f"the corpus is smaller than one batch: its training part has {len(train):,} "
                f"tokens, one batch needs batch_size x bptt + 1 = {batch_size} x {bptt} + 1 = "
                f"{needed:,}; give more text or lower --batch-size or --bptt"
            )
        val = stream.part("val")
        if self.config.val_fraction == 0:
            return ContiguousBatches(train, batch_size, bptt), None
        if stream_length(len(val), batch_size) < 1:
            raise LstmkitError(
                f"the validation part has {len(val)} tokens, too few for {batch_size} streams; "
                "give more text, raise --val-fraction, or pass --val-fraction 0"
            )
        return ContiguousBatches(train, batch_size, bptt), ContiguousBatches(val, batch_size, bptt)

    # ---------------------------------------------------------------- measuring

    def evaluate(self, text: TextSource | None = None, part: str = "test",
                 batch_size: int = 16, cache_dir: str | Path | None = None) -> Evaluation:
        """Perplexity and bits per character on ``text`` (all of it), or by default on
        ``part`` ("val" or "test") of the corpus the model was trained on."""
        net, tokenizer = self._require_model()
        if text is None:
            if part not in ("val", "test"):
                raise LstmkitError(f"part must be 'val' or 'test', got {part!r}")
            corpus, name = self._training_corpus(), part
        else:
            corpus = Corpus.scan(text, self.config.pattern, 0.0, 0.0)
            part, name = "train", "text"  # without held-out fractions everything is "train"
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise LstmkitError(f"--batch-size must be a whole number of at least 1, got "
                               f"{batch_size!r}")
        evaluation = self._evaluate_stream(cached_stream(corpus, tokenizer, cache_dir), part,
                                           name, batch_size)
        if evaluation is None:
            raise LstmkitError(f"the {name} part holds fewer than 2 tokens; nothing to predict")
        return evaluation

    def held_out_text(self, characters: int, part: str = "test") -> str:
        """The first ``characters`` of a held-out part of the training corpus."""
        return "".join(take_characters(self._training_corpus().part_texts(part), characters))

    def _training_corpus(self) -> Corpus:
        """The corpus the model was trained on, checked to be unchanged since."""
        if self.corpus is None:
            raise LstmkitError("the model does not know its training corpus; pass a text")
        corpus = Corpus.scan(self.corpus["sources"], self.corpus["pattern"],
                             self.config.val_fraction, self.config.test_fraction)
        if corpus.fingerprint() != self.corpus["fingerprint"]:
            raise LstmkitError(
                "the training corpus changed since the model was trained (files added, "
                "removed or modified), so its held-out part is no longer known; pass a text "
                "to use instead"
            )
        return corpus

    # ---------------------------------------------------------------- generating

    def stream(self, prompt: str, max_tokens: int = 200, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               stop: str | None = None) -> Iterator[str]:
        """Generate after ``prompt``, yielding the new text piece by piece as it comes.

        Ends after ``max_tokens`` tokens or before the first ``stop`` string (which is
        not yielded). The same ``seed`` gives the same text. Pieces of the prompt the
        vocabulary lacks are read as unknown, with a warning.
        """
        net, tokenizer = self._require_model()
        check_sampling(temperature, top_k, top_p, max_tokens)
        prompt_ids = self._encode_prompt(prompt)
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        prompt_text = tokenizer.decode(prompt_ids)
        generated: list[int] = []
        emitted = 0  # characters of the new text already yielded
        net.eval()
        with torch.no_grad():
            output = net(torch.tensor([prompt_ids]))
            for _ in range(max_tokens):
                logits = output.logits[0, -1].clone()  # (V,)
                logits[PAD_ID] = float("-inf")  # padding never occurs in a stream
                probabilities = next_token_probabilities(logits, temperature, top_k, top_p)
                token = int(torch.multinomial(probabilities, 1, generator=generator))
                generated.append(token)
                # decode with the prompt: word spacing and BPE bytes join up correctly
                text = tokenizer.decode(prompt_ids + generated)[len(prompt_text):]
                if stop and stop in text:
                    yield text[emitted:text.index(stop)]
                    return
                ready = len(text) - (stop_prefix_length(text, stop) if stop else 0)
                if ready > emitted:
                    yield text[emitted:ready]
                    emitted = ready
                output = net(torch.tensor([[token]]), output.state)
        if len(text) > emitted:
            yield text[emitted:]

    def generate(self, prompt: str, max_tokens: int = 200, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop: str | None = None, on_text: Callable[[str], None] | None = None) -> str:
        """The text generated after ``prompt`` (see :meth:`stream`); ``on_text`` receives
        each piece as it is produced."""
        pieces = []
        for piece in self.stream(prompt, max_tokens, temperature, top_k, top_p, seed, stop):
            if on_text is not None:
                on_text(piece)
            pieces.append(piece)
        return "".join(pieces)

    def _encode_prompt(self, prompt: str) -> list[int]:
        _, tokenizer = self._require_model()
        ids = tokenizer.encode(prompt)
        if not ids:
            raise LstmkitError("the prompt is empty; give at least one character to start from")
        unknown = ids.count(UNK_ID)
        if unknown:
            pieces = (tokenizer.split(prompt) if isinstance(tokenizer, VocabularyTokenizer)
                      else tokenizer.tokens(prompt))
            missing = sorted({p for p, i in zip(pieces, ids) if i == UNK_ID})
            logger.warning("the prompt has %d piece(s) the vocabulary lacks (%s); they are "
                           "read as %s", unknown, ", ".join(map(repr, missing)),
                           tokenizer.id_to_token(UNK_ID))
        return ids

    # ---------------------------------------------------------------- inspecting

    def cell_activations(self, text: str, layer: int = -1) -> tuple[list[str], np.ndarray]:
        """The pieces of ``text`` as the model reads them, and tanh(c_t) of every unit of
        LSTM ``layer`` after each: (pieces, array (T, H))."""
        net, tokenizer = self._require_model()
        if not -len(net.layers) <= layer < len(net.layers):
            raise LstmkitError(f"layer {layer} does not exist; the model has "
                               f"{len(net.layers)} layer(s): 0 .. {len(net.layers) - 1}")
        ids = tokenizer.encode(text)
        if not ids:
            raise LstmkitError("the text to inspect is empty")
        pieces = list(text) if tokenizer.kind == "char" else tokenizer.tokens(text)
        net.eval()
        with torch.no_grad(), record_gates(net.layers[layer]) as trace:
            net(torch.tensor([ids]))
        cells = trace.last[0]["c"][0]  # batch_first (1, T, H) -> (T, H)
        return pieces, torch.tanh(cells).numpy()

    # ---------------------------------------------------------------- saving

    def _write(self, directory: Path) -> None:
        net, tokenizer = self._require_model()
        write_config(directory, TASK, {"language_model": self.config.to_json(),
                                       "vocab_size": tokenizer.vocab_size,
                                       "corpus": self.corpus})
        tokenizer.save(directory / TOKENIZER_FILE)
        save_weights(directory / MODEL_FILE, net.state_dict())
        if self.unigram is not None:
            save_weights(directory / UNIGRAM_FILE, {"counts": torch.from_numpy(self.unigram)})
        atomic_write_json(directory / METRICS_FILE, self.metrics)

    @classmethod
    def _read(cls, run: FinishedRun) -> LanguageModel:
        saved = run.config
        model = cls(LanguageModelConfig.from_json(saved["language_model"]))
        model.tokenizer = tokenizer_from_json(run.json(TOKENIZER_FILE))
        model.corpus = saved["corpus"]
        weights = run.weights(MODEL_FILE, lambda: LanguageModelNet(model.tokenizer.vocab_size,
                                                                   model.config))
        model.net = LanguageModelNet(model.tokenizer.vocab_size, model.config)
        model.net.load_state_dict(weights)
        if run.has(UNIGRAM_FILE):
            model.unigram = run.weights(UNIGRAM_FILE)["counts"].numpy()
        model.metrics = run.json(METRICS_FILE) if run.has(METRICS_FILE) else {}
        return model

    def pretrained_encoder(self) -> PretrainedEncoder:
        """The tokenizer, embedding and LSTM layers, for a classifier to fine-tune."""
        net, tokenizer = self._require_model()
        c = self.config
        return PretrainedEncoder(
            tokenizer=tokenizer,
            embedding=nn.Embedding.from_pretrained(net.embedding.weight.detach().clone(),
                                                   freeze=False),
            lstm=net.stacked_lstm(),
            config={"vocab_size": tokenizer.vocab_size, "embedding_dim": c.embedding_dim,
                    "hidden_size": c.hidden_size, "num_layers": c.num_layers,
                    "proj_size": c.proj_size, "tokenizer": c.tokenizer},
        )

    def _require_model(self) -> tuple[LanguageModelNet, Tokenizer]:
        if self.net is None or self.tokenizer is None:
            raise LstmkitError("the language model is not trained: call fit or load a run first")
        return self.net, self.tokenizer


def pretrained_encoder(run_dir: str | Path) -> PretrainedEncoder:
    """The encoder of the language model in ``run_dir`` (see :class:`PretrainedEncoder`)."""
    return LanguageModel.load(run_dir).pretrained_encoder()


def _source_names(text: TextSource) -> list[str]:
    """Sources as they will be found again: absolute paths, or "stdlib"."""
    sources = [text] if isinstance(text, (str, os.PathLike)) else list(text)
    return [STDLIB if str(s) == STDLIB else str(Path(s).resolve()) for s in sources]
