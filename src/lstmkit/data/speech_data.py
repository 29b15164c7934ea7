"""Transcribed audio: which recordings say what.

Two ways to give it:

- a manifest, CSV or TSV, with a column naming each audio file (``audio``, ``path``,
  ``file`` or ``wav``) and one with its transcript (``transcript``, ``text`` or
  ``sentence``); relative paths are read from the manifest's folder; an optional
  ``speaker`` column is kept;
- a folder of audio files (.wav, .flac, .ogg, searched recursively), each with a
  same-named .txt file holding its transcript.

Transcripts are normalised (lowercase, one space between words) as they are read.
Splits keep every sentence in one part: the same words said by two voices never sit
on both sides of a test.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from lstmkit.errors import LstmkitError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
AUDIO_COLUMNS = ("audio", "path", "file", "wav", "filename")
TRANSCRIPT_COLUMNS = ("transcript", "text", "sentence", "transcription")


def tidy_transcript(text: str) -> str:
    """Lowercase, one space between words, no spaces at the ends (other characters are
    kept: the model's alphabet decides whether they may be there)."""
    return " ".join(str(text).lower().split())


@dataclass
class SpeechData:
    """Recordings and what each says; ``name`` says where they came from."""

    name: str
    paths: list[Path]
    transcripts: list[str]
    speakers: list[str] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: list[int]) -> SpeechData:
        speakers = None if self.speakers is None else [self.speakers[i] for i in indices]
        return SpeechData(self.name, [self.paths[i] for i in indices],
                          [self.transcripts[i] for i in indices], speakers)

    def check_alphabet(self, alphabet: str, fix: str) -> None:
        """Raise naming the characters of the transcripts outside ``alphabet`` (and a line
        that has them); ``fix`` says how to go on."""
        allowed = set(alphabet)
        for path, text in zip(self.paths, self.transcripts):
            outside = sorted(set(text) - allowed)
            if outside:
                every = sorted({c for t in self.transcripts for c in t} - allowed)
                raise LstmkitError(
                    f"{self.name}: transcripts use characters outside the alphabet "
                    f"{alphabet!r}: {''.join(every)!r} (e.g. {path.name}: {text!r}); {fix}")


def read_speech_data(source: str | Path | SpeechData) -> SpeechData:
    """The recordings and transcripts of a manifest or a folder (see the module's
    docstring), every audio file checked present."""
    if isinstance(source, SpeechData):
        return source
    path = Path(source)
    if not path.exists():
        raise LstmkitError(f"{path} does not exist; give a manifest (CSV/TSV with audio and "
                           "transcript columns) or a folder of audio files with .txt "
                           "transcripts (--data)")
    data = _read_folder(path) if path.is_dir() else _read_manifest(path)
    if len(data) == 0:
        raise LstmkitError(f"{path} holds no recordings")
    missing = [p for p in data.paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        raise LstmkitError(f"{path}: {len(missing)} audio file(s) it names do not exist "
                           f"({shown}{', ...' if len(missing) > 3 else ''}); fix the paths "
                           "(relative ones are read from the manifest's folder)")
    empty = [p for p, t in zip(data.paths, data.transcripts) if not t]
    if empty:
        raise LstmkitError(f"{path}: {len(empty)} recording(s) have an empty transcript (e.g. "
                           f"{empty[0]}); give each recording the words it says, or leave it "
                           "out")
    return data


def _read_manifest(path: Path) -> SpeechData:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file, delimiter=delimiter))
    except (UnicodeDecodeError, csv.Error) as error:
        raise LstmkitError(f"cannot read the manifest {path} as UTF-8 "
                           f"{'TSV' if delimiter == chr(9) else 'CSV'} ({error}); give one row "
                           "per recording with audio and transcript columns") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise LstmkitError(f"the manifest {path} is empty; give a header row (audio,"
                           "transcript) and one row per recording")
    header = [cell.strip().lower() for cell in rows[0]]
    audio = next((header.index(c) for c in AUDIO_COLUMNS if c in header), None)
    text = next((header.index(c) for c in TRANSCRIPT_COLUMNS if c in header), None)
    if audio is None or text is None:
        raise LstmkitError(f"the manifest {path} has columns {rows[0]}; it needs one of "
                           f"{', '.join(AUDIO_COLUMNS)} (the audio file) and one of "
                           f"{', '.join(TRANSCRIPT_COLUMNS)} (what it says)")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise LstmkitError(f"{path}, line {line}: {len(row)} fields where the header has "
                               f"{len(header)}; quote transcripts that hold the separator "
                               '(e.g. "hello, world") or use a TSV')
    speaker = header.index("speaker") if "speaker" in header else None
    folder = path.parent
    paths = [Path(row[audio].strip()) for row in rows[1:]]
    return SpeechData(str(path), [p if p.is_absolute() else folder / p for p in paths],
                      [tidy_transcript(row[text]) for row in rows[1:]],
                      None if speaker is None else [row[speaker] for row in rows[1:]])


def _read_folder(folder: Path) -> SpeechData:
    audio = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not audio:
        raise LstmkitError(f"{folder} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    untranscribed = [p for p in audio if not p.with_suffix(".txt").is_file()]
    if untranscribed:
        raise LstmkitError(f"{folder}: {len(untranscribed)} audio file(s) have no transcript "
                           f"(e.g. {untranscribed[0].name} needs "
                           f"{untranscribed[0].with_suffix('.txt').name}); write one .txt "
                           "beside each, or use a manifest")
    transcripts = [tidy_transcript(p.with_suffix(".txt").read_text(encoding="utf-8"))
                   for p in audio]
    return SpeechData(str(folder), audio, transcripts)


def split_by_sentence(data: SpeechData, validation_fraction: float,
                      test_fraction: float) -> dict[str, SpeechData]:
    """Training, validation and test parts with no sentence in two parts; a sentence's
    part depends on its words alone, so it is the same in every run."""
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for index, text in enumerate(data.transcripts):
        draw = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64
        part = ("test" if draw < test_fraction else
                "validation" if draw < test_fraction + validation_fraction else "train")
        parts[part].append(index)
    return {name: data.subset(indices) for name, indices in parts.items()}
