"""A multi-speaker English speech corpus, synthesised on this machine with espeak-ng.

Speech recognition needs audio with transcripts, and downloading a corpus is not always
possible. espeak-ng (Debian: ``apt-get install espeak-ng``) speaks English with several
accents (``en-us``, ``en-gb``, ``en-gb-scotland``, ``en-029``, ...) and dozens of voice
variants (``m1``..``m8``, ``f1``..``f5``, ``klatt``, ...); every accent x variant pair is
one "speaker". The text comes from the machine too: the long descriptions of the
installed Debian packages and Python's own documentation.

The pipeline, one function each:

- :func:`find_sentences`: clean English sentences of 4-14 words whose spoken form matches
  their written form (no digits, acronyms, abbreviations or code);
- :func:`synthesise_corpus`: speak them with many voices, speeds and pitches, resample
  to 16 kHz mono, add white noise to some, and write FLAC files with ``train.csv``,
  ``validation.csv`` and ``test.csv`` manifests and a ``corpus.json`` description.

The parts are disjoint by sentence *and* by speaker: validation and test use sentences
and voices that training never hears, so their error rates measure generalisation to
new speakers, not memory of the training voices.

Transcripts everywhere go through :func:`normalise_transcript` and use only
:data:`ALPHABET`.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import math
import os
import random
import re
import shutil
import subprocess
import sysconfig
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstmkit.data.audio import SAMPLE_RATE, read_audio
from lstmkit.errors import LstmkitError, option_name
from lstmkit.io.files import atomic_write_json, atomic_write_text

ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"
"""The characters of every transcript: space, apostrophe and the 26 lowercase letters."""


HEADROOM_PEAK = 0.5
"""Peak amplitude of the clean speech (full scale is 1), before noise is added."""

SPLITS = ("train", "validation", "test")
MANIFEST_COLUMNS = ("audio", "transcript", "speaker")

MIN_WORDS, MAX_WORDS = 4, 14
SPEEDS_WPM = (130, 200)
PITCHES = (30, 70)

DPKG_STATUS = Path("/var/lib/dpkg/status")
ESPEAK = "espeak-ng"

# Shares of the sentences (and utterances) per part; the voices are shared out the same way.
_PART_SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}

# espeak reads these as something else than their spelling ("etc" -> "et cetera"), so a
# sentence holding one would get a wrong transcript.
_ABBREVIATIONS = frozenset(
    "etc vs eg ie mr mrs ms dr st jr sr inc ltd co approx viz cf al nb ps ok".split()
)
# Variants that do not sound like a person (robots, whispers, effects): a recogniser
# trained on people should not be scored on them.
_ODD_VARIANTS = ("robo", "robot", "whisper", "demonic", "croak", "fast", "tweaky",
                 "announcer", "kaukovalta", "ricishay")
_PUNCTUATION = ",.;:!?-\"()"  # dropped when they stand alone or around a word
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def normalise_transcript(text: str) -> str:
    """``text`` as a transcript: lowercase letters, apostrophes inside words and single
    spaces; accents are stripped, hyphens and other characters become spaces.

    The same function normalises reference transcripts and recognisers' hypotheses, so
    error rates compare words, not spelling conventions.
    """
    text = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = "".join(c if c in ALPHABET else " " for c in text)
    # Apostrophes only inside words: quotes around a word are dropped.
    words = (word.strip("'") for word in text.split())
    return " ".join(word for word in words if word)


def _spoken_as_written(sentence: str) -> str | None:
    """The normalised sentence when espeak would say exactly its words, else None."""
    words = []
    for token in sentence.split():
        core = token.strip(_PUNCTUATION + "'")
        if not core:
            if set(token) <= set(_PUNCTUATION):
                continue  # a lone dash or bracket: nothing is spoken
            return None
        if not _WORD.fullmatch(core):
            return None  # digits, URLs, paths, code, symbols
        if any(c.isupper() for c in core[1:]):
            return None  # acronyms (espeak spells "GNU" as "g n u") and CamelCase names
        if len(core) == 1 and core.lower() not in ("a", "i"):
            return None  # a lone letter ("the C library") is spoken as its name
        if core.lower() in _ABBREVIATIONS:
            return None
        words.append(core)
    if not MIN_WORDS <= len(" ".join(words).replace("-", " ").split()) <= MAX_WORDS:
        return None
    return normalise_transcript(" ".join(words))


def _split_sentences(paragraph: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(" ".join(paragraph.split()))]


def _dpkg_paragraphs(status: str) -> Iterable[str]:
    """The paragraphs of every long package description in a dpkg status file."""
    lines: list[str] = []
    in_description = False
    for line in status.splitlines():
        if line.startswith("Description:"):
            in_description = True
            continue  # the synopsis is a title, not a sentence
        if not (in_description and line.startswith(" ")):
            in_description = False
            if lines:
                yield " ".join(lines)
                lines = []
            continue
        text = line.strip()
        # " ." separates paragraphs; list items ("* foo", "- bar") stand alone.
        if text == "." or text[:2] in ("* ", "- ", "+ ", "o "):
            if lines:
                yield " ".join(lines)
            lines = [] if text == "." else [text[2:]]
        else:
            lines.append(text)
    if lines:
        yield " ".join(lines)


def _docstring_paragraphs() -> Iterable[str]:
    """The paragraphs of the docstrings of Python's standard library (modules, classes,
    functions; tests left out): English prose that every Python installation has."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        parts = path.relative_to(stdlib).parts
        if any(p in ("test", "tests", "idle_test", "site-packages") for p in parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few library files are templates or other encodings
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)):
                text = ast.get_docstring(node)
                if text:
                    yield from re.split(r"\n\s*\n", text)


def _default_paragraphs() -> list[str]:
    """Debian's package descriptions, Python's documentation and the docstrings of its
    standard library: together about 9,000 sentences; the first two alone give about
    1,100, too few for a recogniser to learn spelling rather than sentences."""
    paragraphs: list[str] = []
    if DPKG_STATUS.is_file():
        paragraphs += _dpkg_paragraphs(DPKG_STATUS.read_text(encoding="utf-8",
                                                             errors="replace"))
    from pydoc_data.topics import topics

    paragraphs += [p for text in topics.values() for p in re.split(r"\n\s*\n", text)]
    paragraphs += _docstring_paragraphs()
    return paragraphs


def find_sentences(source: Path | None = None, limit: int | None = 20_000) -> list[str]:
    """Normalised English sentences of 4-14 words that espeak-ng says as they are written.

    ``source`` is a UTF-8 text file with one sentence per line (a line holding several
    sentences is split at ``.``, ``!`` and ``?``). Without it, the long descriptions of the
    installed Debian packages (``/var/lib/dpkg/status``, where present) and the text of
    Python's own documentation (``pydoc_data.topics``) are used: about 1,100 sentences on a
    Debian machine.

    A sentence is kept when it is made only of words of letters and apostrophes with
    punctuation that can be dropped: no digits, URLs, code, symbols, acronyms, single
    letters or abbreviations, all of which espeak reads differently from their spelling.
    The result is deduplicated, sorted and shuffled with a fixed seed (the same list on
    every run), and holds at most ``limit`` sentences.
    """
    if source is None:
        paragraphs = _default_paragraphs()
    else:
        source = Path(source)
        if not source.is_file():
            raise LstmkitError(f"{source} does not exist; pass a UTF-8 text file with one "
                               "sentence per line")
        try:
            paragraphs = source.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise LstmkitError(f"{source} is not UTF-8 text ({error}); convert it to "
                               "UTF-8") from error
    found = {
        kept
        for paragraph in paragraphs
        for sentence in _split_sentences(paragraph)
        if (kept := _spoken_as_written(sentence))
    }
    sentences = sorted(found)
    random.Random(0).shuffle(sentences)  # mix topics and packages, the same way every run
    return sentences if limit is None else sentences[:limit]


# ---------------------------------------------------------------------------- voices


def _espeak() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise LstmkitError("espeak-ng is not installed: install it (Debian: apt-get install "
                           "espeak-ng) or synthesise the corpus on a machine that has it")
    return path


def _voice_table(espeak: str, argument: str) -> list[list[str]]:
    result = subprocess.run([espeak, argument], capture_output=True, text=True, check=True)
    # Columns: Pty, Language, Age/Gender, VoiceName, File, Other languages.
    return [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]


def espeak_version(espeak: str | None = None) -> str:
    """The version line of espeak-ng ("eSpeak NG text-to-speech: 1.51 ...")."""
    result = subprocess.run([espeak or _espeak(), "--version"], capture_output=True,
                            text=True, check=True)
    return result.stdout.strip().split("  Data at")[0]


def english_voices(espeak: str | None = None) -> tuple[list[str], list[str]]:
    """(languages, variants): espeak-ng's own English voices and its human-sounding variants.

    Languages are those of ``espeak-ng --voices=en`` stored under ``gmw/`` (the mbrola
    voices under ``mb/`` need separately installed data); variants are the files of
    ``espeak-ng --voices=variant`` less robots, whispers and other effects.
    """
    espeak = espeak or _espeak()
    languages = sorted({row[1] for row in _voice_table(espeak, "--voices=en")
                        if len(row) >= 5 and row[4].startswith("gmw/")})
    variants = sorted({row[4].removeprefix("!v/") for row in _voice_table(espeak,
                                                                           "--voices=variant")
                       if len(row) == 5 and row[4].startswith("!v/")
                       and not any(odd in row[4].lower() for odd in _ODD_VARIANTS)})
    # A file name with a space ("Mr serious") splits into two columns and is skipped above.
    return languages, variants


# ---------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CorpusSummary:
    """What :func:`synthesise_corpus` wrote: manifests, counts and hours per part."""

    root: Path
    manifests: dict[str, Path]  # part -> manifest CSV
    utterances: dict[str, int]
    sentences: dict[str, int]
    speakers: dict[str, int]
    seconds: dict[str, float]  # seconds of audio per part
    synthesis_seconds: float  # wall time of the whole synthesis
    description: Path = field(default=Path())  # corpus.json


@dataclass(frozen=True)
class _Utterance:
    part: str
    index: int
    text: str
    language: str
    variant: str
    speed: int
    pitch: int
    snr_db: float | None  # None: clean

    @property
    def speaker(self) -> str:
        return f"{self.language}+{self.variant}"

    @property
    def audio(self) -> str:
        return f"audio/{self.part}/{self.part}-{self.index:05d}.flac"


def _shares(total: int) -> dict[str, int]:
    """``total`` shared 80/10/10, each part at least 1 (for ``total >= 3``)."""
    test = max(1, round(total * _PART_SHARES["test"]))
    validation = max(1, round(total * _PART_SHARES["validation"]))
    return {"train": total - validation - test, "validation": validation, "test": test}


def _plan(sentences: Sequence[str], languages: Sequence[str], variants: Sequence[str],
          utterances: int, seed: int, noise_fraction: float,
          snr_db: tuple[float, float]) -> list[_Utterance]:
    """Every random choice of the corpus, made here in one place so a seed fixes them all."""
    rng = random.Random(seed)
    chosen = rng.sample(list(sentences), min(len(sentences), utterances))
    voices = [(language, variant) for language in languages for variant in variants]
    rng.shuffle(voices)
    sentence_counts, voice_counts = _shares(len(chosen)), _shares(len(voices))
    utterance_counts = _shares(utterances)
    plan: list[_Utterance] = []
    sentence_start = voice_start = 0
    for part in SPLITS:
        part_sentences = chosen[sentence_start:sentence_start + sentence_counts[part]]
        part_voices = voices[voice_start:voice_start + voice_counts[part]]
        sentence_start += sentence_counts[part]
        voice_start += voice_counts[part]
        for index in range(utterance_counts[part]):
            # Sentences repeat (with another voice) only when there are too few of them.
            language, variant = rng.choice(part_voices)
            plan.append(_Utterance(
                part=part, index=index, text=part_sentences[index % len(part_sentences)],
                language=language, variant=variant,
                speed=rng.randint(*SPEEDS_WPM), pitch=rng.randint(*PITCHES), snr_db=None))
    noisy = set(rng.sample(range(len(plan)), round(noise_fraction * len(plan))))
    return [
        dataclasses.replace(u, snr_db=round(rng.uniform(*snr_db), 2))
        if number in noisy else u
        for number, u in enumerate(plan)
    ]


def _synthesise(espeak: str, utterance: _Utterance, root: Path, seed: int) -> float:
    """Speak one utterance into ``root / utterance.audio``; its length in seconds."""
    import soundfile

    target = root / utterance.audio
    wav = target.with_suffix(".wav")
    # The text goes through stdin: never a shell, and a text cannot pose as an option.
    spoken = subprocess.run(
        [espeak, "-v", utterance.speaker, "-s", str(utterance.speed),
         "-p", str(utterance.pitch), "-w", str(wav), "--stdin"],
        input=utterance.text, text=True, capture_output=True)
    if spoken.returncode != 0:
        why = spoken.stderr.strip() or f"exit status {spoken.returncode}"
        raise LstmkitError(f"espeak-ng failed on voice {utterance.speaker} ({why}); check that "
                           f"it runs: espeak-ng -v {utterance.speaker} hello")
    samples = read_audio(wav, SAMPLE_RATE).double().numpy()  # mono, 16 kHz
    wav.unlink()
    # espeak speaks near full scale: leave headroom so added noise does not clip.
    samples = samples * (HEADROOM_PEAK / (float(np.abs(samples).max()) or 1.0))
    if utterance.snr_db is not None:
        # Seeded by utterance, not by thread order, so the audio is the same for any jobs.
        noise_rng = np.random.default_rng([seed, SPLITS.index(utterance.part),
                                           utterance.index])
        power = float(np.mean(samples**2)) or 1e-12
        noise_power = power / 10 ** (utterance.snr_db / 10)
        samples = samples + noise_rng.normal(0.0, math.sqrt(noise_power), samples.shape)
    samples = np.clip(samples, -1.0, 1.0)
    soundfile.write(target, samples, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    return len(samples) / SAMPLE_RATE


def _write_manifest(path: Path, rows: Iterable[_Utterance]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for u in rows:
        writer.writerow((u.audio, u.text, u.speaker))
    atomic_write_text(path, buffer.getvalue())


def _check_options(utterances: int, noise_fraction: float,
                   snr_db: tuple[float, float], jobs: int) -> None:
    if utterances < 3:
        raise LstmkitError(f"{option_name('utterances')} is {utterances}; it must be at "
                           "least 3 (one per part: train, validation, test)")
    if not 0.0 <= noise_fraction <= 1.0:
        raise LstmkitError(f"{option_name('noise_fraction')} is {noise_fraction}; it must be "
                           "between 0 and 1")
    if len(snr_db) != 2 or snr_db[0] > snr_db[1]:
        raise LstmkitError(f"{option_name('snr_db')} is {snr_db}; give (low, high) in dB "
                           "with low <= high")
    if jobs < 1:
        raise LstmkitError(f"{option_name('jobs')} is {jobs}; it must be at least 1")


def synthesise_corpus(
    out_dir: str | Path,
    *,
    utterances: int = 600,
    seed: int = 0,
    sentences: Sequence[str] | None = None,
    noise_fraction: float = 0.3,
    snr_db: tuple[float, float] = (10, 30),
    jobs: int = 2,
    overwrite: bool = False,
) -> CorpusSummary:
    """Synthesise ``utterances`` spoken sentences into ``out_dir`` with espeak-ng.

    Each utterance is one sentence (from ``sentences``, else :func:`find_sentences`) said
    by one voice (an English accent + a variant, e.g. ``en-gb-scotland+f3``) at a random
    speed (130-200 words a minute) and pitch (30-70), resampled to 16 kHz mono; a
    ``noise_fraction`` of them get white noise at a signal-to-noise ratio drawn from
    ``snr_db``. ``jobs`` espeak-ng processes run at once. The same seed (and the same
    espeak-ng and sentences) gives the same corpus.

    Written: ``audio/<part>/*.flac``; ``train.csv``, ``validation.csv``, ``test.csv``
    (columns ``audio`` (relative to the manifest's folder), ``transcript``, ``speaker``);
    ``corpus.json`` (voices, counts, options, espeak-ng version). Sentences are shared
    80/10/10 between the parts and so are the voices: no sentence and no voice is in two
    parts. The corpus is built in a temporary folder beside ``out_dir`` and renamed into
    place at the end, so a killed run leaves no half corpus; an existing non-empty
    ``out_dir`` is refused unless ``overwrite``.
    """
    out_dir = Path(out_dir)
    _check_options(utterances, noise_fraction, snr_db, jobs)
    if out_dir.exists() and not out_dir.is_dir():
        raise LstmkitError(f"{out_dir} is a file, not a folder; choose another output folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise LstmkitError(f"{out_dir} already exists and is not empty; choose another "
                           f"output folder or pass {option_name('overwrite')} to replace it")
    espeak = _espeak()
    started = time.perf_counter()
    if sentences is None:
        sentences = find_sentences()
    sentences = sorted({normalise_transcript(s) for s in sentences} - {""})
    if len(sentences) < 3:
        raise LstmkitError(f"only {len(sentences)} usable sentences; give at least 3 (one "
                           "per part), e.g. a text file with one English sentence per line")
    languages, variants = english_voices(espeak)
    if not languages or not variants:
        raise LstmkitError("espeak-ng lists no English voices or no variants; reinstall it "
                           "(Debian: apt-get install --reinstall espeak-ng-data)")
    if len(languages) * len(variants) < 3:
        raise LstmkitError("espeak-ng has fewer than 3 English voices; the parts need "
                           "distinct voices: reinstall espeak-ng-data")
    plan = _plan(sentences, languages, variants, utterances, seed, noise_fraction,
                 tuple(snr_db))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        for part in SPLITS:
            (staging / "audio" / part).mkdir(parents=True)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            # Threads are enough: the work happens in espeak-ng processes and numpy/scipy.
            lengths = list(pool.map(lambda u: _synthesise(espeak, u, staging, seed), plan))
        seconds = {part: 0.0 for part in SPLITS}
        for u, length in zip(plan, lengths):
            seconds[u.part] += length
        manifests = {part: staging / f"{part}.csv" for part in SPLITS}
        for part in SPLITS:
            _write_manifest(manifests[part], (u for u in plan if u.part == part))
        by_part = {part: [u for u in plan if u.part == part] for part in SPLITS}
        description = {
            "sample_rate": SAMPLE_RATE,
            "seed": seed,
            "espeak_ng": espeak_version(espeak),
            "languages": languages,
            "variants": variants,
            "utterances": {p: len(by_part[p]) for p in SPLITS},
            "sentences": {p: len({u.text for u in by_part[p]}) for p in SPLITS},
            "sentences_available": len(sentences),
            "noisy_utterances": {p: sum(u.snr_db is not None for u in by_part[p])
                                 for p in SPLITS},
            "seconds": {p: round(seconds[p], 2) for p in SPLITS},
            "speakers": {p: sorted({u.speaker for u in by_part[p]}) for p in SPLITS},
            "options": {"speeds_wpm": list(SPEEDS_WPM), "pitches": list(PITCHES),
                        "noise_fraction": noise_fraction, "snr_db": list(snr_db)},
        }
        atomic_write_json(staging / "corpus.json", description)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it owner-only
        _replace_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CorpusSummary(
        root=out_dir,
        manifests={part: out_dir / f"{part}.csv" for part in SPLITS},
        utterances=description["utterances"],
        sentences=description["sentences"],
        speakers={p: len(description["speakers"][p]) for p in SPLITS},
        seconds=description["seconds"],
        synthesis_seconds=round(time.perf_counter() - started, 2),
        description=out_dir / "corpus.json",
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_folder(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` at ``out_dir``; an old ``out_dir`` is removed only once it is aside."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old."))
    os.replace(out_dir, old / "corpus")
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(old / "corpus", out_dir)  # put the old corpus back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
