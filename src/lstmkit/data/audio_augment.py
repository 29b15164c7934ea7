"""Augmentation for speech: masked features, faster or slower speech, added noise.

Every function that draws random numbers takes an explicit ``torch.Generator``, so a
run seeded the same way augments the same way (and resumes to the same result).
"""

from __future__ import annotations

import math

import torch

from lstmkit.data.audio import resample
from lstmkit.errors import LstmkitError


def _uniform_int(high: int, generator: torch.Generator) -> int:
    """A whole number drawn uniformly from [0, high] (high >= 0)."""
    return int(torch.randint(0, high + 1, (1,), generator=generator))


def spec_augment(features: torch.Tensor, generator: torch.Generator, freq_masks: int = 2,
                 freq_width: int = 15, time_masks: int = 2,
                 time_width_fraction: float = 0.05) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) without time warping, on features (T, F).

    ``freq_masks`` times, a band of f ~ U[0, freq_width] mel channels starting at
    f0 ~ U[0, F - f] is masked; ``time_masks`` times, t ~ U[0, floor(time_width_fraction
    * T)] frames starting at t0 ~ U[0, T - t]. Masked cells are set to the mean of all of
    ``features`` (one number), which is 0 when the features are already normalised to
    zero mean; masking to the mean, not to 0, keeps unnormalised log-mels (all negative)
    from gaining a loud artificial band. Returns a new tensor; ``features`` is unchanged.
    """
    if features.dim() != 2:
        raise LstmkitError(f"spec_augment needs features of shape (T, F), got "
                           f"{tuple(features.shape)}")
    if min(freq_masks, freq_width, time_masks) < 0 or not 0 <= time_width_fraction <= 1:
        raise LstmkitError(
            "spec_augment: freq_masks, freq_width and time_masks must be 0 or more and "
            f"time_width_fraction between 0 and 1, got {freq_masks}, {freq_width}, "
            f"{time_masks}, {time_width_fraction}"
        )
    frames, channels = features.shape
    masked = features.clone()
    if masked.numel() == 0:
        return masked
    fill = masked.mean()
    for _ in range(freq_masks):
        width = _uniform_int(min(freq_width, channels), generator)
        start = _uniform_int(channels - width, generator)
        masked[:, start:start + width] = fill
    time_width = math.floor(time_width_fraction * frames)
    for _ in range(time_masks):
        width = _uniform_int(time_width, generator)
        start = _uniform_int(frames - width, generator)
        masked[start:start + width, :] = fill
    return masked


def speed_perturb(wave: torch.Tensor, factor: float, sample_rate: int) -> torch.Tensor:
    """``wave`` (N,) played ``factor`` times faster: about N / factor samples (0.9 slows
    speech down and lowers its pitch, 1.1 speeds it up and raises it, as in Ko et al.
    2015's speed perturbation).

    The wave is treated as if recorded at ``sample_rate * factor`` Hz and resampled to
    ``sample_rate``; that rate is rounded to a whole number of Hz.
    """
    if not (math.isfinite(factor) and 0.25 <= factor <= 4.0):
        raise LstmkitError(f"speed factor {factor} is out of range; use a factor between "
                           "0.25 and 4 (0.9, 1.0, 1.1 are usual)")
    if factor == 1.0:
        return wave.to(torch.float32).clone()
    return resample(wave, round(sample_rate * factor), sample_rate)


def add_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """``wave`` (N,) plus white Gaussian noise at a signal-to-noise ratio of ``snr_db``.

    The noise is scaled so that its mean power is exactly the wave's mean power divided
    by 10^(snr_db / 10). A silent wave (power 0) is returned unchanged: no noise level
    has that SNR against it.
    """
    if not math.isfinite(snr_db):
        raise LstmkitError(f"snr_db must be a finite number of decibels, got {snr_db}")
    wave = wave.to(torch.float32)
    signal_power = float(wave.to(torch.float64).square().mean()) if wave.numel() else 0.0
    if signal_power == 0.0:
        return wave.clone()
    noise = torch.randn(wave.shape, generator=generator, dtype=torch.float64)
    noise_power = signal_power / 10 ** (snr_db / 10)
    noise = noise * math.sqrt(noise_power / float(noise.square().mean()))
    noise = noise.to(wave.device)  # drawn on the generator's device (the CPU as a rule)
    return (wave.to(torch.float64) + noise).to(torch.float32)


__all__ = ["add_noise", "spec_augment", "speed_perturb"]
