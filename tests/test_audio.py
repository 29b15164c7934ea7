"""Audio features: log-mel against a numpy reference, streaming, reading, cache, augmentation."""

import dataclasses
import math
import os

import numpy as np
import pytest
import soundfile
import torch

from lstmkit.data.audio import (
    SAMPLE_RATE,
    FeatureConfig,
    StreamingLogMel,
    cached_log_mel,
    default_cache_dir,
    log_mel,
    mel_filterbank,
    read_audio,
    resample,
    silent,
)
from lstmkit.data.audio_augment import add_noise, spec_augment, speed_perturb
from lstmkit.errors import LstmkitError


def _reference_log_mel(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The log-mel formula written out independently: explicit frames, one rfft each, and
    HTK triangles built filter by filter."""
    window, hop, n_fft = config.window, config.hop, config.n_fft
    n = np.arange(window)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / window)  # periodic Hann
    count = 1 + (len(wave) - window) // hop
    power = np.stack([
        np.abs(np.fft.rfft(wave[t * hop:t * hop + window] * hann, n=n_fft)) ** 2
        for t in range(count)
    ])

    def mel(f):
        return 2595 * math.log10(1 + f / 700)

    def hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    low, high = mel(config.f_min), mel(config.f_max)
    points = [hz(low + (high - low) * i / (config.n_mels + 1)) for i in range(config.n_mels + 2)]
    bins = n_fft // 2 + 1
    bank = np.zeros((bins, config.n_mels))
    for m in range(config.n_mels):
        left, centre, right = points[m], points[m + 1], points[m + 2]
        for k in range(bins):
            f = k * config.sample_rate / n_fft
            if left < f <= centre:
                bank[k, m] = (f - left) / (centre - left)
            elif centre < f < right:
                bank[k, m] = (right - f) / (right - centre)
    return np.log(np.maximum(power @ bank, config.log_floor))


def _centres(config: FeatureConfig) -> np.ndarray:
    low = 2595 * np.log10(1 + config.f_min / 700)
    high = 2595 * np.log10(1 + config.f_max / 700)
    mels = np.linspace(low, high, config.n_mels + 2)[1:-1]
    return 700 * (10 ** (mels / 2595) - 1)


def _tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


# --------------------------------------------------------------------------- config


def test_config_round_trips_and_derives_sizes():
    config = FeatureConfig(n_mels=40, hop_ms=12.5)
    assert FeatureConfig(**dataclasses.asdict(config)) == config
    assert (FeatureConfig().window, FeatureConfig().hop) == (400, 160)
    assert FeatureConfig().frame_seconds == pytest.approx(0.01)


@pytest.mark.parametrize("changes, words", [
    ({"sample_rate": 4000, "f_max": 2000.0}, "8000 Hz"),
    ({"n_fft": 256}, "n_fft"),
    ({"f_max": 9000.0}, "half the sample rate"),
    ({"hop_ms": 30.0}, "hop_ms"),
    ({"log_floor": 0.0}, "log_floor"),
    ({"n_mels": 200}, "lower n_mels"),
])
def test_config_refuses_bad_values(changes, words):
    with pytest.raises(LstmkitError, match=words):
        FeatureConfig(**changes)


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(n_mels=40, hop_ms=12.5,
                                                                   sample_rate=8000,
                                                                   f_max=4000.0, n_fft=256)])
def test_log_mel_matches_the_reference_formula(config):
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(0.5 * config.sample_rate) + 37)).astype(np.float32)
    expected = _reference_log_mel(wave.astype(np.float64), config)
    got = log_mel(torch.from_numpy(wave), config)
    assert got.dtype == torch.float32
    assert got.shape == (1 + (len(wave) - config.window) // config.hop, config.n_mels)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_filterbank_shape_and_peaks():
    config = FeatureConfig()
    bank = mel_filterbank(config)
    assert bank.shape == (config.n_fft // 2 + 1, config.n_mels)
    assert float(bank.min()) == 0.0 and float(bank.max()) <= 1.0
    assert (bank.max(dim=0).values > 0).all()  # every filter catches at least one FFT bin


def test_pure_tone_lands_in_its_mel_bin():
    config = FeatureConfig()
    target = 30
    frequency = float(_centres(config)[target])
    features = log_mel(torch.from_numpy(_tone(frequency, 0.5, SAMPLE_RATE)), config)
    energy = features.mean(dim=0)
    assert int(energy.argmax()) == target
    assert energy[target] > energy[target - 2] + 3 and energy[target] > energy[target + 2] + 3


def test_streaming_equals_whole_wave():
    config = FeatureConfig()
    generator = torch.Generator().manual_seed(1)
    wave = torch.randn(3 * SAMPLE_RATE + 123, generator=generator)
    whole = log_mel(wave, config)
    stream = StreamingLogMel(config)
    for _ in range(2):  # reset() starts over: the second pass gives the same frames
        pieces, start = [], 0
        while start < wave.numel():
            size = int(torch.randint(1, 2500, (1,), generator=generator))
            piece = stream.push(wave[start:start + size])
            assert piece.shape[1] == config.n_mels
            pieces.append(piece)
            start += size
        assert torch.equal(torch.cat(pieces), whole)
        stream.reset()


def test_log_mel_refuses_short_or_multichannel_waves():
    with pytest.raises(LstmkitError, match="analysis window"):
        log_mel(torch.zeros(100))
    with pytest.raises(LstmkitError, match="mono"):
        log_mel(torch.zeros(2, 1000))


def test_silent():
    quiet = torch.from_numpy(_tone(440, 1.0, SAMPLE_RATE, amplitude=0.001))  # about -63 dBFS
    assert silent(quiet)
    loud_burst = quiet.clone()
    loud_burst[8000:9600] = 0.5  # 100 ms at about -6 dBFS
    assert not silent(loud_burst)
    assert not silent(quiet, threshold_db=-70.0)
    assert silent(torch.zeros(SAMPLE_RATE))


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("rate, suffix", [(8000, "wav"), (22050, "flac"), (44100, "wav")])
def test_read_audio_resamples_stereo_to_mono(tmp_path, rate, suffix):
    seconds = 0.5
    left = _tone(440, seconds, rate)
    stereo = np.stack([left, 0.5 * left], axis=1)
    path = tmp_path / f"tone.{suffix}"
    soundfile.write(path, stereo, rate)
    wave = read_audio(path)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert wave.numel() == math.ceil(len(left) * SAMPLE_RATE / rate)
    # The mean of the channels is 0.75 of the left one; resampling keeps a 440 Hz tone.
    expected = 0.75 * 0.5 / math.sqrt(2)
    assert float(wave[2000:-2000].square().mean().sqrt()) == pytest.approx(expected, rel=0.02)


def test_read_audio_keeps_a_16k_file_as_is(tmp_path):
    tone = _tone(440, 0.2, SAMPLE_RATE)
    soundfile.write(tmp_path / "a.wav", tone, SAMPLE_RATE, subtype="FLOAT")
    assert torch.equal(read_audio(tmp_path / "a.wav"), torch.from_numpy(tone))


def test_resample_length():
    assert resample(torch.zeros(22050), 22050, 16000).numel() == 16000


def test_read_audio_errors(tmp_path):
    with pytest.raises(LstmkitError, match="does not exist; check the path"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "notes.wav").write_text("not audio at all")
    with pytest.raises(LstmkitError, match=r"notes\.wav is not readable audio.*convert it"):
        read_audio(tmp_path / "notes.wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(LstmkitError, match=r"empty\.wav holds no audio"):
        read_audio(tmp_path / "empty.wav")
    soundfile.write(tmp_path / "low.wav", _tone(100, 0.5, 4000), 4000)
    with pytest.raises(LstmkitError, match=r"low\.wav is recorded at 4000 Hz.*8 kHz or more"):
        read_audio(tmp_path / "low.wav")
    soundfile.write(tmp_path / "short.wav", _tone(440, 0.01, 16000), 16000)
    with pytest.raises(LstmkitError, match=r"short\.wav lasts 10\.0 ms.*longer recording"):
        read_audio(tmp_path / "short.wav")


# --------------------------------------------------------------------------- cache


def test_cache_hits_and_recomputes_changed_or_damaged_files(tmp_path, monkeypatch):
    config = FeatureConfig(n_mels=40)
    cache = tmp_path / "cache"
    paths = []
    for index, frequency in enumerate([300.0, 1200.0]):
        paths.append(tmp_path / f"{index}.wav")
        soundfile.write(paths[-1], _tone(frequency, 0.3, SAMPLE_RATE), SAMPLE_RATE)
    first = cached_log_mel(paths, config, cache)
    entries = sorted(cache.glob("*.safetensors"))
    assert len(entries) == 2
    for features, path in zip(first, paths):
        assert torch.equal(features, log_mel(read_audio(path), config))

    # A hit reads the file back: the features are identical, nothing is recomputed.
    import lstmkit.data.audio as audio

    def no_reading(*args, **kwargs):
        raise AssertionError("a cache hit must not read the audio")

    monkeypatch.setattr(audio, "read_audio", no_reading)
    second = cached_log_mel(paths, config, cache)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    monkeypatch.undo()

    # A damaged entry is recomputed and replaced.
    entries[0].write_bytes(b"garbage")
    again = cached_log_mel(paths, config, cache)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len(list(cache.glob("*.safetensors"))) == 2

    # A changed file (same length, new content and mtime) gets new features.
    soundfile.write(paths[0], _tone(2500.0, 0.3, SAMPLE_RATE), SAMPLE_RATE)
    status = paths[0].stat()
    os.utime(paths[0], ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    changed = cached_log_mel(paths, config, cache)
    assert not torch.equal(changed[0], first[0])
    assert torch.equal(changed[0], log_mel(read_audio(paths[0]), config))
    assert torch.equal(changed[1], first[1])

    with pytest.raises(LstmkitError, match="does not exist"):
        cached_log_mel([tmp_path / "gone.wav"], config, cache)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LSTMKIT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "features"


# --------------------------------------------------------------------------- augmentation


def test_spec_augment_shape_reproducibility_and_fill():
    features = torch.randn(200, 80) - 5.0
    masked = spec_augment(features, torch.Generator().manual_seed(3))
    again = spec_augment(features, torch.Generator().manual_seed(3))
    assert masked.shape == features.shape and torch.equal(masked, again)
    changed = masked != features
    assert changed.any() and torch.all(masked[changed] == features.mean())
    untouched = spec_augment(features, torch.Generator(), freq_masks=0, time_masks=0)
    assert torch.equal(untouched, features)
    with pytest.raises(LstmkitError):
        spec_augment(features[0], torch.Generator())


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturb_changes_length(factor):
    wave = torch.from_numpy(_tone(440, 1.0, SAMPLE_RATE))
    faster = speed_perturb(wave, factor, SAMPLE_RATE)
    assert faster.dim() == 1
    assert faster.numel() == pytest.approx(SAMPLE_RATE / factor, abs=1)
    with pytest.raises(LstmkitError, match="speed factor"):
        speed_perturb(wave, 0.0, SAMPLE_RATE)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_add_noise_snr_and_reproducibility(snr_db):
    wave = torch.from_numpy(_tone(440, 1.0, SAMPLE_RATE))
    noisy = add_noise(wave, snr_db, torch.Generator().manual_seed(5))
    assert noisy.shape == wave.shape
    assert torch.equal(noisy, add_noise(wave, snr_db, torch.Generator().manual_seed(5)))
    noise = (noisy - wave).double()
    measured = 10 * math.log10(float(wave.double().square().mean() / noise.square().mean()))
    assert abs(measured - snr_db) < 0.5
    assert torch.equal(add_noise(torch.zeros(100), 10.0, torch.Generator()), torch.zeros(100))
