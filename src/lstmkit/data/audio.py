"""Audio in, log-mel features out: the front end of speech recognition.

    wave (N,) at 16 kHz  ->  frames of ``window`` samples every ``hop`` samples
      -> periodic Hann window, zero-padded to ``n_fft``  ->  power spectrum |X|^2
      -> triangular filters on the HTK mel scale  ->  log(max(mel, log_floor))

Frames are not centred (``torch.stft(center=False)``): frame ``t`` covers samples
``[t * hop, t * hop + window)``, so ``frames = 1 + (N - window) // hop`` and a stream of
samples fed chunk by chunk (:class:`StreamingLogMel`) yields exactly the frames of the
whole recording. Features of many files can be kept on disk (:func:`cached_log_mel`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import scipy.signal
import soundfile
import torch

from lstmkit.errors import LstmkitError
from lstmkit.io.files import cache_root
from lstmkit.io.weights import save_weights

SAMPLE_RATE = 16000
"""The sample rate features are computed at (Hz); speech corpora are mostly 16 kHz."""

MIN_SAMPLE_RATE = 8000
"""Recordings below this rate (Hz) lose too much of the speech band to be recognised."""

_CACHE_FORMAT = 1
"""Part of every cache key: bump it when the feature computation changes."""


def _hz_to_mel(hz: float | np.ndarray) -> float | np.ndarray:
    """HTK mel scale: mel = 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@dataclass(frozen=True)
class FeatureConfig:
    """How log-mel features are computed; round-trips through ``dataclasses.asdict``.

    ``window_ms``/``hop_ms`` give the analysis window and the step between frames;
    each window is zero-padded to ``n_fft`` samples before the FFT. ``n_mels``
    triangular filters span ``f_min`` to ``f_max`` Hz; mel energies below
    ``log_floor`` are raised to it before the log (silence gives log(log_floor)).
    """

    sample_rate: int = SAMPLE_RATE
    n_mels: int = 80
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    f_min: float = 20.0
    f_max: float = 7600.0
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        def need(condition: bool, message: str) -> None:
            if not condition:
                raise LstmkitError(f"feature config: {message}")

        for name in ("sample_rate", "n_mels", "n_fft"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool),
                 f"{name} must be a whole number, got {value!r}")
        for name in ("window_ms", "hop_ms", "f_min", "f_max", "log_floor"):
            value = getattr(self, name)
            need(isinstance(value, int | float) and not isinstance(value, bool)
                 and math.isfinite(value), f"{name} must be a finite number, got {value!r}")
        need(self.sample_rate >= MIN_SAMPLE_RATE,
             f"sample_rate is {self.sample_rate} Hz; use {MIN_SAMPLE_RATE} Hz or more")
        need(self.n_mels >= 1, f"n_mels is {self.n_mels}; use 1 or more (80 is usual)")
        need(self.window >= 2, f"window_ms {self.window_ms} is under two samples; use e.g. 25")
        need(self.hop >= 1, f"hop_ms {self.hop_ms} is under one sample; use e.g. 10")
        # A hop longer than the window would skip samples, which streaming cannot carry.
        need(self.hop <= self.window,
             f"hop_ms {self.hop_ms} exceeds window_ms {self.window_ms}; samples between "
             "frames would never be analysed: make hop_ms at most window_ms")
        need(self.n_fft >= self.window,
             f"n_fft {self.n_fft} is shorter than the window ({self.window} samples); "
             f"use n_fft of at least {self.window} (a power of two such as "
             f"{1 << (self.window - 1).bit_length()})")
        nyquist = self.sample_rate / 2
        need(0 <= self.f_min < self.f_max <= nyquist,
             f"need 0 <= f_min < f_max <= {nyquist:g} (half the sample rate), got "
             f"f_min={self.f_min}, f_max={self.f_max}")
        need(self.log_floor > 0, f"log_floor must be positive, got {self.log_floor}")
        # A filter narrower than the FFT's bin spacing catches no bin and would give a
        # constant feature; refuse it here rather than train on a dead input.
        empty = int((mel_filterbank(self).sum(dim=0) == 0).sum())
        need(empty == 0,
             f"{empty} of the {self.n_mels} mel filters fall between FFT bins; lower n_mels "
             f"or raise n_fft (now {self.n_fft})")

    @property
    def window(self) -> int:
        """Analysis window length in samples."""
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def hop(self) -> int:
        """Step between frames in samples."""
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def frame_seconds(self) -> float:
        """Seconds between consecutive frames (the hop in seconds)."""
        return self.hop / self.sample_rate


# --------------------------------------------------------------------------- reading


def resample(wave: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """``wave`` (N,) at ``from_rate`` Hz resampled to ``to_rate`` Hz, float32.

    Polyphase filtering (``scipy.signal.resample_poly``) with the rate ratio reduced by
    their greatest common divisor; the result has ``ceil(N * to_rate / from_rate)``
    samples.
    """
    from_rate, to_rate = int(from_rate), int(to_rate)
    if from_rate <= 0 or to_rate <= 0:
        raise LstmkitError(f"sample rates must be positive, got {from_rate} -> {to_rate} Hz")
    if from_rate == to_rate:
        return wave.to(torch.float32).clone()
    divisor = math.gcd(from_rate, to_rate)
    up, down = to_rate // divisor, from_rate // divisor
    samples = wave.detach().cpu().to(torch.float64).numpy()
    resampled = scipy.signal.resample_poly(samples, up, down)
    return torch.from_numpy(np.ascontiguousarray(resampled, dtype=np.float32))


def _require_file(path: Path) -> None:
    """Raise a clear error unless ``path`` is an existing file."""
    if path.is_dir():
        raise LstmkitError(f"{path} is a folder, not an audio file; name a file inside it")
    if not path.is_file():
        raise LstmkitError(f"audio file {path} does not exist; check the path")


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The recording at ``path`` (WAV, FLAC, OGG, ... anything libsndfile reads) as a
    float32 mono wave (N,) in [-1, 1] at ``sample_rate`` Hz.

    Multi-channel audio is averaged to mono; a file at another rate is resampled. A
    missing, unreadable or empty file, a file recorded below 8 kHz, or a recording
    shorter than one 25 ms analysis window raises :class:`LstmkitError`.
    """
    path = Path(path)
    if sample_rate < MIN_SAMPLE_RATE:
        raise LstmkitError(f"cannot read audio at {sample_rate} Hz; use a sample rate of "
                           f"{MIN_SAMPLE_RATE} Hz or more")
    _require_file(path)
    try:
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        # libsndfile reports files it cannot decode as SoundFileError/RuntimeError.
        raise LstmkitError(
            f"{path} is not readable audio ({error}); convert it to WAV or FLAC "
            "(e.g. ffmpeg -i INPUT -ar 16000 -ac 1 OUTPUT.wav)"
        ) from error
    if samples.shape[0] == 0:
        raise LstmkitError(f"{path} holds no audio samples; re-record or remove it")
    if file_rate < MIN_SAMPLE_RATE:
        raise LstmkitError(
            f"{path} is recorded at {file_rate} Hz, too low for speech features; "
            f"record at {MIN_SAMPLE_RATE // 1000} kHz or more"
        )
    if not np.isfinite(samples).all():
        raise LstmkitError(f"{path} contains NaN or infinite samples; the file is damaged: "
                           "re-export it")
    wave = torch.from_numpy(samples.mean(axis=1, dtype=np.float32))  # (N, C) -> (N,)
    wave = resample(wave, file_rate, sample_rate)
    window = round(sample_rate * FeatureConfig.window_ms / 1000)
    if wave.numel() < window:
        raise LstmkitError(
            f"{path} lasts {samples.shape[0] / file_rate * 1000:.1f} ms, shorter than one "
            f"{FeatureConfig.window_ms:g} ms analysis window; use a longer recording"
        )
    return wave


# --------------------------------------------------------------------------- features


def mel_filterbank(config: FeatureConfig) -> torch.Tensor:
    """Triangular filters (n_fft // 2 + 1, n_mels) on the HTK mel scale, peak 1.

    Filter ``m`` rises from edge ``m`` to centre ``m + 1`` and falls to edge ``m + 2``
    of ``n_mels + 2`` points equally spaced in mel between ``f_min`` and ``f_max``.
    """
    frequencies = np.linspace(0.0, config.sample_rate / 2, config.n_fft // 2 + 1)  # (K,)
    edges_mel = np.linspace(_hz_to_mel(config.f_min), _hz_to_mel(config.f_max),
                            config.n_mels + 2)
    edges = _mel_to_hz(edges_mel)  # (M + 2,)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]  # each (M,)
    rising = (frequencies[:, None] - lower) / (centre - lower)  # (K, M)
    falling = (upper - frequencies[:, None]) / (upper - centre)  # (K, M)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return torch.from_numpy(weights.astype(np.float32))


def _filterbank64(config: FeatureConfig) -> torch.Tensor:
    """:func:`mel_filterbank` in float64, as :func:`_frames` uses it."""
    return mel_filterbank(config).to(torch.float64)


_WINDOWS: dict[tuple[int, int], torch.Tensor] = {}


def _analysis_window(config: FeatureConfig) -> torch.Tensor:
    """Periodic Hann of ``window`` samples followed by zeros up to ``n_fft``.

    torch.stft centres a short window inside each n_fft frame; putting the zeros after
    the window instead makes frame t start at sample t * hop, as the frame count
    ``1 + (N - window) // hop`` promises.
    """
    key = (config.window, config.n_fft)
    if key not in _WINDOWS:
        hann = torch.hann_window(config.window, periodic=True, dtype=torch.float64)
        _WINDOWS[key] = torch.nn.functional.pad(hann, (0, config.n_fft - config.window))
    return _WINDOWS[key]


def _frames(wave: torch.Tensor, config: FeatureConfig, filterbank: torch.Tensor) -> torch.Tensor:
    """Log-mel frames (1 + (N - window) // hop, n_mels) float32 of a wave of N >= window
    samples.

    The sums run in float64 and are rounded to float32 at the end: batched FFTs and
    matrix products round differently for different numbers of frames, and float64
    hides that, so a stream cut into pieces gets the very same float32 frames.
    """
    wave = wave.to(torch.float64)
    # Zeros after the wave let the last frame read n_fft samples; the window is zero there.
    padded = torch.nn.functional.pad(wave, (0, config.n_fft - config.window))
    spectrum = torch.stft(padded, n_fft=config.n_fft, hop_length=config.hop,
                          win_length=config.n_fft, window=_analysis_window(config),
                          center=False, return_complex=True)  # (K, T)
    power = spectrum.abs().square().T  # (T, K)
    mel = power @ filterbank  # (T, M)
    return torch.log(torch.clamp_min(mel, config.log_floor)).to(torch.float32)


def log_mel(wave: torch.Tensor, config: FeatureConfig | None = None) -> torch.Tensor:
    """Log-mel features (frames, n_mels) of ``wave`` (N,), at ``config.sample_rate``.

    ``frames = 1 + (N - window) // hop``; trailing samples that do not fill a frame are
    ignored. A wave shorter than one window raises :class:`LstmkitError`.
    """
    config = config or FeatureConfig()
    if wave.dim() != 1:
        raise LstmkitError(f"log_mel needs a mono wave of shape (N,), got {tuple(wave.shape)}; "
                           "average the channels first (read_audio does)")
    if wave.numel() < config.window:
        raise LstmkitError(
            f"the wave has {wave.numel()} samples, fewer than one analysis window "
            f"({config.window} samples = {config.window_ms:g} ms); use a longer recording"
        )
    wave = wave.detach().to(device="cpu", dtype=torch.float32)
    return _frames(wave, config, _filterbank64(config))


class StreamingLogMel:
    """Log-mel frames of a wave that arrives in pieces (a microphone, a socket).

    Each :meth:`push` returns the frames its samples completed and keeps the samples a
    later frame still needs; all pushes concatenated equal :func:`log_mel` of the whole
    wave, because frames are not centred and so never look past their own window.
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self._filterbank = _filterbank64(self.config)
        self._pending = torch.zeros(0, dtype=torch.float32)

    def reset(self) -> None:
        """Forget carried samples: the next push starts a new recording."""
        self._pending = torch.zeros(0, dtype=torch.float32)

    def push(self, samples: torch.Tensor) -> torch.Tensor:
        """Frames (k, n_mels) completed by ``samples`` (n,); k may be 0."""
        if samples.dim() != 1:
            raise LstmkitError(f"push needs mono samples of shape (n,), got "
                               f"{tuple(samples.shape)}")
        samples = samples.detach().to(device="cpu", dtype=torch.float32)
        buffer = torch.cat([self._pending, samples])
        window, hop = self.config.window, self.config.hop
        if buffer.numel() < window:
            self._pending = buffer
            return torch.zeros(0, self.config.n_mels)
        count = 1 + (buffer.numel() - window) // hop
        frames = _frames(buffer[: (count - 1) * hop + window], self.config, self._filterbank)
        # The next frame starts at count * hop; hop <= window keeps that inside the buffer.
        self._pending = buffer[count * hop:].clone()
        return frames


def silent(wave: torch.Tensor, threshold_db: float = -50.0,
           sample_rate: int = SAMPLE_RATE) -> bool:
    """Whether even the loudest 100 ms of ``wave`` is quieter than ``threshold_db``.

    Loudness is RMS in dBFS (an RMS of 1.0 is 0 dBFS), taken on the raw samples, not
    after peak normalisation, so quiet hiss stays silent however it is scaled in the
    file. A wave shorter than 100 ms is measured whole; an empty wave is silent.
    """
    if wave.numel() == 0:
        return True
    energy = wave.detach().cpu().to(torch.float64).reshape(-1).square()
    width = min(max(1, sample_rate // 10), energy.numel())
    # Sliding sums from one cumulative sum: the mean square of every 100 ms stretch.
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), energy.cumsum(0)])
    loudest = float((cumulative[width:] - cumulative[:-width]).max()) / width
    level_db = 10 * math.log10(loudest) if loudest > 0 else -math.inf
    return level_db < threshold_db


# --------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    """Where features are cached: ``$LSTMKIT_CACHE/features``, else the user cache
    (``$XDG_CACHE_HOME/lstmkit`` or ``~/.cache/lstmkit``) ``/features``."""
    return cache_root() / "features"


def _cache_key(path: Path, config: FeatureConfig) -> str:
    """A name for the features of ``path``: it changes when the file or the config does."""
    _require_file(path)
    resolved = path.resolve()
    status = resolved.stat()
    identity = {"path": str(resolved), "size": status.st_size, "mtime_ns": status.st_mtime_ns,
                "config": dataclasses.asdict(config), "format": _CACHE_FORMAT}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _read_cached(file: Path, key: str, n_mels: int) -> torch.Tensor | None:
    """The features in a cache file, or None when it is missing or damaged."""
    if not file.is_file():
        return None
    try:
        with safetensors.safe_open(file, framework="pt") as handle:
            if (handle.metadata() or {}).get("key") != key:
                return None
            features = handle.get_tensor("features")
    except Exception:  # any damage (truncated, garbage header) just means: compute again
        return None
    if features.dim() != 2 or features.shape[1] != n_mels or features.dtype != torch.float32:
        return None
    return features


def cached_log_mel(paths: list[Path], config: FeatureConfig | None = None,
                   cache_dir: Path | None = None) -> list[torch.Tensor]:
    """Log-mel features of each audio file in ``paths``, in order, kept on disk.

    Each file's features are one safetensors file in ``cache_dir`` (default
    :func:`default_cache_dir`) named by a hash of the resolved path, size, mtime and
    ``config``: editing a file or changing the config computes them again. Entries are
    written atomically; a damaged one is recomputed and replaced.
    """
    config = config or FeatureConfig()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    filterbank = _filterbank64(config)
    computed: dict[str, torch.Tensor] = {}  # the same file listed twice is read once
    results: list[torch.Tensor] = []
    for path in paths:
        path = Path(path)
        key = _cache_key(path, config)
        if key not in computed:
            file = cache_dir / f"{key}.safetensors"
            features = _read_cached(file, key, config.n_mels)
            if features is None:
                wave = read_audio(path, config.sample_rate)
                if wave.numel() < config.window:
                    raise LstmkitError(
                        f"{path} is shorter than one {config.window_ms:g} ms analysis "
                        "window; use a longer recording"
                    )
                features = _frames(wave, config, filterbank)
                save_weights(file, {"features": features}, metadata={"key": key})
            computed[key] = features
        results.append(computed[key])
    return results


__all__ = [
    "SAMPLE_RATE", "FeatureConfig", "StreamingLogMel", "cached_log_mel", "default_cache_dir",
    "log_mel", "mel_filterbank", "read_audio", "resample", "silent",
]
