"""A toy speech corpus a small recogniser learns in seconds: each letter a tone of its
own pitch, a short silence between words (no espeak-ng needed)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
LETTERS = "abcd"


def tone_audio(text: str, rng: random.Random) -> np.ndarray:
    """``text`` (letters of LETTERS and spaces) as a sequence of tones and gaps."""
    pieces = [np.zeros(int(0.05 * SAMPLE_RATE))]
    for character in text:
        if character == " ":
            pieces.append(np.zeros(int(rng.uniform(0.06, 0.1) * SAMPLE_RATE)))
            continue
        seconds = rng.uniform(0.08, 0.12)
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        pitch = 400 * 1.6 ** LETTERS.index(character)
        pieces.append(0.3 * np.sin(2 * np.pi * pitch * t) * np.hanning(len(t)))
    pieces.append(np.zeros(int(0.05 * SAMPLE_RATE)))
    wave = np.concatenate(pieces)
    hiss = np.random.default_rng(rng.randint(0, 2**31)).normal(0, 0.003, len(wave))
    return (wave + hiss).astype(np.float32)


def write_tone_corpus(folder: Path, count: int = 60, seed: int = 0,
                      name: str = "manifest.csv") -> Path:
    """``count`` recordings of 2-4 random words in ``folder``; returns the manifest."""
    rng = random.Random(seed)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        text = " ".join("".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 3)))
                        for _ in range(rng.randint(2, 4)))
        path = Path("audio") / f"{seed}-{k:03d}.wav"
        soundfile.write(folder / path, tone_audio(text, rng), SAMPLE_RATE)
        rows.append({"audio": str(path), "transcript": text})
    manifest = folder / name
    with open(manifest, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["audio", "transcript"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
