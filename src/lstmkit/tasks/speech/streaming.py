"""Streaming recognition: audio in chunks as it comes, a partial transcript after each.

A forward-only (unidirectional) recogniser carries everything between chunks: the
samples of an unfinished analysis window (StreamingLogMel), the frames of an unfinished
stacked step, the LSTM's (h, c) and the last emitted CTC token. Greedy decoding runs
on as steps arrive, so the partial text only ever grows by what the new audio said;
at the end, the whole utterance's log-probabilities get the model's beam search. The
steps are exactly those of the whole recording: what is streamed ends with the
transcript of :meth:`Recogniser.transcribe` (up to float rounding: the two may run
on different kernels; and ``transcribe`` answers silence with an empty text without
decoding it).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch
from torch import Tensor

from lstmkit.data.audio import StreamingLogMel, read_audio
from lstmkit.errors import LstmkitError
from lstmkit.tasks.speech.decoding import LanguageScorer, transcript_text
from lstmkit.tasks.speech.network import State

if TYPE_CHECKING:
    from lstmkit.tasks.speech.recogniser import Recogniser, Transcript


class SpeechStream:
    """One utterance streamed through a unidirectional recogniser."""

    def __init__(self, recogniser: Recogniser) -> None:
        config = recogniser.config
        if config.bidirectional:
            raise LstmkitError("this model is bidirectional: it needs the whole recording "
                               "before it can say anything; train a streaming model with "
                               "--streaming (forward-only LSTM) to stream")
        self.recogniser = recogniser
        self.net = recogniser._require_net().eval()
        self.features = StreamingLogMel(config.feature_config)
        self.sample_rate = config.feature_config.sample_rate
        self.pending = torch.zeros(0, config.feature_config.n_mels)  # frames not yet stacked
        self.state: State | None = None
        self.log_probs: list[Tensor] = []  # (U_chunk, V) per chunk
        self.tokens: list[int] = []
        self.previous = 0  # the last step's best token (0: blank), to merge repeats
        self.samples = 0
        self.compute_seconds = 0.0
        self.chunk_seconds: list[float] = []  # compute per push

    @property
    def text(self) -> str:
        """The partial transcript so far (greedy)."""
        return transcript_text(self.tokens, self.recogniser.config.alphabet)

    @property
    def audio_seconds(self) -> float:
        return self.samples / self.sample_rate

    def push(self, samples: Tensor) -> str:
        """Feed the next samples (1-D, at the model's sample rate); returns the partial
        transcript after them."""
        started = time.perf_counter()
        self.samples += len(samples)
        frames = torch.cat([self.pending, self.features.push(samples)])
        stack = self.net.stack
        whole = len(frames) - len(frames) % stack
        self.pending = frames[whole:]
        if whole:
            self._run(frames[:whole])
        seconds = time.perf_counter() - started
        self.compute_seconds += seconds
        self.chunk_seconds.append(seconds)
        return self.text

    def partials(self, chunks: Iterable[Tensor]) -> Iterator[str]:
        """Push every chunk; yield the partial transcript whenever it changes."""
        shown = ""
        for chunk in chunks:
            text = self.push(chunk)
            if text != shown:
                shown = text
                yield text

    def finish(self, beam_size: int | None = None,
               language_model: LanguageScorer | None = None,
               lm_weight: float = 0.5) -> Transcript:
        """End of the utterance: the frames of an unfinished step, padded as the whole
        recording's would be; the final transcript by the model's decoding."""
        started = time.perf_counter()
        if len(self.pending):
            self._run(self.pending)
            self.pending = self.pending[:0]
        if not self.log_probs:
            window_ms = self.recogniser.config.feature_config.window_ms
            raise LstmkitError(f"the stream ended before one analysis window of audio "
                               f"({window_ms:g} ms) arrived; nothing to transcribe")
        best = self.recogniser.decode(torch.cat(self.log_probs), beam_size, language_model,
                                      lm_weight)
        self.compute_seconds += time.perf_counter() - started
        return self.recogniser.transcript(best, self.audio_seconds, self.compute_seconds)

    @torch.no_grad()
    def _run(self, frames: Tensor) -> None:
        stacked = self.net.stacked(frames.unsqueeze(1))  # (U, 1, k F)
        log_probs, self.state = self.net.stream(stacked, self.state)
        self.log_probs.append(log_probs)
        for token in log_probs.argmax(-1).tolist():
            if token != 0 and token != self.previous:
                self.tokens.append(token)
            self.previous = token


def audio_chunks(path: Path | None, raw_input: BinaryIO, sample_rate: int,
                 chunk_ms: int) -> Iterator[Tensor]:
    """``chunk_ms`` of audio at a time: from an audio file, or without one from
    ``raw_input`` as raw 16-bit little-endian mono PCM at ``sample_rate``."""
    if chunk_ms < 10:
        raise LstmkitError(f"--chunk-ms must be at least 10, got {chunk_ms}")
    samples = sample_rate * chunk_ms // 1000
    if path is not None:
        wave = read_audio(path, sample_rate)
        for start in range(0, len(wave), samples):
            yield wave[start:start + samples]
        return
    if raw_input.isatty():
        raise LstmkitError("no audio: give a file with --input, or pipe raw 16-bit mono PCM "
                           f"at {sample_rate} Hz into standard input")
    while True:
        block = raw_input.read(2 * samples)
        if not block:
            return
        usable = len(block) - len(block) % 2  # a final odd byte is half a sample
        pcm = np.frombuffer(block[:usable], dtype="<i2").astype(np.float32) / 32768.0
        yield torch.from_numpy(pcm)


def stream_report(stream: SpeechStream, final: Transcript) -> str:
    """Compute per chunk (median and worst, milliseconds) and the real-time factor."""
    chunks = stream.chunk_seconds or [0.0]
    factor = final.compute_seconds / max(final.audio_seconds, 1e-9)
    return (f"{len(stream.chunk_seconds)} chunks, {final.audio_seconds:.2f} s of audio: "
            f"compute per chunk median {1000 * statistics.median(chunks):.1f} ms, worst "
            f"{1000 * max(chunks):.1f} ms; real-time factor {factor:.3f}")
