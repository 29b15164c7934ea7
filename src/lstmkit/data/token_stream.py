"""Token streams: a text corpus tokenized once into a memory-mapped array of ids.

    files or folders -> Corpus.scan          every file decoded once (UTF-8 checked, characters
                                             counted), nothing kept in memory
                     -> Corpus.chunks        the text again, cut by position into the parts
                                             train | val | test (in this order, not shuffled)
                     -> TokenStream.write    token ids appended to tokens.bin chunk by chunk
                     -> TokenStream.open     np.memmap: training reads only the windows it needs
                     -> ContiguousBatches    B streams side by side, bptt tokens at a time

A part boundary sits at the first line break after its share of the characters, so no
word is cut in two. The stream remembers each part's token range and its number of
characters, so a word or BPE model can report bits per character of the text itself.

:func:`cached_stream` keeps streams in a cache folder keyed by the files (path, size,
modification time), the split and the tokenizer: a corpus is tokenized once and every
later run on it (or evaluation of it) opens the same file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lstmkit.data.tokenizers import Tokenizer
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_directory, atomic_write_json, cache_root, read_json

logger = logging.getLogger("lstmkit.lm")

STDLIB = "stdlib"
"""Pass this in place of paths for the Python standard library's own source files."""

PARTS = ("train", "val", "test")
TOKENS_FILE = "tokens.bin"
STREAM_FILE = "stream.json"
CHUNK_BYTES = 1 << 20
STREAM_FORMAT = 1

# the stdlib's own tests hold files in other encodings on purpose (and the packages
# installed beside it are not the stdlib)
_STDLIB_SKIPPED_FOLDERS = {"site-packages", "dist-packages", "test", "tests", "idle_test"}

TextSource = str | os.PathLike | Sequence[str | os.PathLike]
"""One path, several paths, or ``"stdlib"``: files, or folders read recursively."""


# --------------------------------------------------------------------------- files


def stdlib_files() -> list[Path]:
    """The ``.py`` files of the running interpreter's standard library, tests left out."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        path for path in root.rglob("*.py")
        if path.is_file() and not _STDLIB_SKIPPED_FOLDERS & set(path.relative_to(root).parts)
    )


def corpus_files(sources: TextSource, pattern: str = "*") -> list[Path]:
    """The files of ``sources``: each file itself, each folder's files matching
    ``pattern`` (recursively, sorted, hidden ones skipped), ``"stdlib"`` the stdlib."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files: list[Path] = []
    for source in sources:
        if str(source) == STDLIB:
            files.extend(stdlib_files())
            continue
        path = Path(source)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(
                found for found in path.rglob(pattern)
                if found.is_file()
                and not any(part.startswith(".") for part in found.relative_to(path).parts)
            ))
        else:
            raise LstmkitError(f"{path} does not exist; pass text files, folders of them, "
                               f"or {STDLIB!r}")
    if not files:
        raise LstmkitError(
            f"the corpus is empty: no files matching {pattern!r} in "
            f"{', '.join(map(str, sources))}; check the paths or the --pattern"
        )
    return files


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """The text of a UTF-8 file in pieces of about ``chunk_bytes``, each ending at a line
    break (or the file's end), so a corpus larger than memory streams through."""
    offset = 0  # bytes of the file before ``pending``
    pending = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk_bytes)
            pending += block
            if block:
                # a line break byte never occurs inside a multi-byte UTF-8 character
                cut = pending.rfind(b"\n") + 1
                if cut == 0:
                    continue
            elif not pending:
                return
            else:
                cut = len(pending)
            piece, pending = pending[:cut], pending[cut:]
            try:
                yield piece.decode("utf-8")
            except UnicodeDecodeError as error:
                where = offset + error.start
                raise LstmkitError(
                    f"{path} is not UTF-8 text: byte 0x{piece[error.start]:02x} at byte offset "
                    f"{where} cannot be decoded; convert the file to UTF-8 (e.g. iconv -t "
                    "UTF-8) or leave it out of the corpus"
                ) from None
            offset += cut
            if not block:
                return


def take_characters(texts: Iterable[str], limit: int) -> Iterator[str]:
    """The pieces of ``texts`` up to ``limit`` characters in all (the last one cut)."""
    left = limit
    for text in texts:
        if left <= 0:
            return
        yield text[:left]
        left -= len(text)


def read_text(path: str | Path, limit: int | None = None) -> str:
    """The text of one UTF-8 file (its first ``limit`` characters)."""
    chunks = read_chunks(corpus_files(path)[0])
    return "".join(chunks if limit is None else take_characters(chunks, limit))


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Corpus:
    """Files and where the parts start: ``val_fraction`` and ``test_fraction`` of the
    characters at the end go to validation and test, the rest (first) to training."""

    files: tuple[Path, ...]
    characters: tuple[int, ...]  # per file
    val_fraction: float
    test_fraction: float

    @classmethod
    def scan(cls, sources: TextSource, pattern: str = "*", val_fraction: float = 0.05,
             test_fraction: float = 0.05) -> Corpus:
        """Find the files and check that they are UTF-8 text (one pass, nothing kept)."""
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1
                and val_fraction + test_fraction < 1):
            raise LstmkitError(
                f"val_fraction {val_fraction} and test_fraction {test_fraction} must each lie "
                "in [0, 1) and leave some text for training"
            )
        files = corpus_files(sources, pattern)
        characters = tuple(sum(len(text) for text in read_chunks(path)) for path in files)
        if sum(characters) == 0:
            raise LstmkitError(
                f"the corpus is empty: its {len(files)} file(s) hold no text; pass files "
                "with text in them"
            )
        return cls(tuple(files), characters, float(val_fraction), float(test_fraction))

    @property
    def total_characters(self) -> int:
        return sum(self.characters)

    def fingerprint(self) -> str:
        """Changes when a file is added, removed, or modified, or the split changes."""
        files = []
        for path in self.files:
            status = path.stat()
            files.append([str(path.resolve()), status.st_size, status.st_mtime_ns])
        return _digest({"files": files, "split": [self.val_fraction, self.test_fraction]})

    def describe(self) -> str:
        return f"{len(self.files)} file(s), {self.total_characters:,} characters"

    def chunks(self) -> Iterator[tuple[str, str]]:
        """(part, text) pieces of the whole corpus in order; each part starts at the first
        line break after its nominal character position."""
        total = self.total_characters
        starts = [round(total * (1 - self.val_fraction - self.test_fraction)),
                  round(total * (1 - self.test_fraction))]
        part, position = 0, 0  # current part, characters read so far
        for path in self.files:
            for text in read_chunks(path):
                while part < len(starts) and position + len(text) > starts[part]:
                    offset = starts[part] - position
                    if offset <= 0:  # an empty part, or the last cut went past its start
                        cut = 0
                    else:
                        newline = text.find("\n", offset)
                        cut = len(text) if newline < 0 else newline + 1
                    if cut:
                        yield PARTS[part], text[:cut]
                    position, text = position + cut, text[cut:]
                    part += 1
                if text:
                    yield PARTS[part], text
                position += len(text)

    def part_texts(self, part: str) -> Iterator[str]:
        """The text of one part, in pieces (stops reading after the part)."""
        for name, text in self.chunks():
            if name == part:
                yield text
            elif PARTS.index(name) > PARTS.index(part):
                return


def _digest(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- the stream


@dataclass
class TokenStream:
    """Token ids of a corpus in a memory-mapped file, and where each part lies in it."""

    directory: Path
    tokens: np.ndarray  # (N,) read-only np.memmap
    parts: dict[str, tuple[int, int]]  # part -> [start, stop) in tokens
    characters: dict[str, int]  # part -> characters of its text
    reused: bool = False  # opened from an earlier run rather than written now

    def part(self, name: str) -> np.ndarray:
        start, stop = self.parts[name]
        return self.tokens[start:stop]

    @classmethod
    def open(cls, directory: str | Path) -> TokenStream:
        directory = Path(directory)
        meta = read_json(directory / STREAM_FILE)
        tokens = np.memmap(directory / TOKENS_FILE, dtype=meta["dtype"], mode="r",
                           shape=(meta["tokens"],)) if meta["tokens"] else np.zeros(0, np.uint16)
        parts = {name: tuple(span) for name, span in meta["parts"].items()}
        return cls(directory, tokens, parts, dict(meta["characters"]), reused=True)

    @classmethod
    def write(cls, corpus: Corpus, tokenizer: Tokenizer, directory: str | Path) -> TokenStream:
        """Tokenize ``corpus`` into ``directory`` (created whole, or not at all)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        dtype = np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32
        with atomic_directory(directory) as staging:
            counts = {name: [0, 0] for name in PARTS}  # part -> [tokens, characters]
            with open(staging / TOKENS_FILE, "wb") as handle:
                for part, text in corpus.chunks():
                    ids = np.asarray(tokenizer.encode(text), dtype=dtype)
                    ids.tofile(handle)
                    counts[part][0] += len(ids)
                    counts[part][1] += len(text)
            start, parts = 0, {}
            for name in PARTS:
                parts[name] = [start, start + counts[name][0]]
                start += counts[name][0]
            atomic_write_json(staging / STREAM_FILE, {
                "format_version": STREAM_FORMAT, "dtype": np.dtype(dtype).name,
                "tokens": start, "parts": parts,
                "characters": {name: counts[name][1] for name in PARTS},
                "files": len(corpus.files),
            })
        stream = cls.open(directory)
        stream.reused = False
        return stream


def cached_stream(corpus: Corpus, tokenizer: Tokenizer,
                  cache_dir: str | Path | None = None) -> TokenStream:
    """The token stream of ``corpus`` under ``tokenizer``: opened when the cache holds it,
    written (once) when it does not."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    key = _digest({"corpus": corpus.fingerprint(), "tokenizer": tokenizer.to_json(),
                   "format": STREAM_FORMAT})
    directory = root / "token_streams" / key
    if (directory / STREAM_FILE).is_file():
        logger.info("token stream of %s reused from %s", corpus.describe(), directory)
        return TokenStream.open(directory)
    logger.info("tokenizing %s into %s", corpus.describe(), directory)
    return TokenStream.write(corpus, tokenizer, directory)


# --------------------------------------------------------------------------- batches


def stream_length(tokens: int, batch_size: int) -> int:
    """Tokens per stream when ``tokens`` are cut into ``batch_size`` contiguous streams
    (each stream's last token is also the next one's first target's predecessor)."""
    return (tokens - 1) // batch_size


class ContiguousBatches(Dataset):
    """``batch_size`` contiguous streams read side by side, ``bptt`` tokens at a time.

    The part is cut into ``batch_size`` streams of equal length; item ``t * batch_size
    + j`` is window ``t`` of stream ``j`` as (inputs, targets), each (bptt,) with the
    targets one token ahead. Read in order (``shuffle=False``), the batches of the
    training loop continue every stream where the previous batch stopped, so the
    model's final state of one batch is the right initial state of the next (truncated
    backpropagation through time). Windows are read from the memory map on demand.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, bptt: int) -> None:
        self.tokens = tokens
        self.batch_size = batch_size
        self.length = stream_length(len(tokens), batch_size)
        if self.length < 1:
            raise ValueError(f"{len(tokens)} tokens cannot fill {batch_size} streams")
        self.bptt = min(bptt, self.length)
        self.windows = self.length // self.bptt

    def __len__(self) -> int:
        return self.windows * self.batch_size

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        window, stream = divmod(index, self.batch_size)
        start = stream * self.length + window * self.bptt
        ids = torch.from_numpy(np.asarray(self.tokens[start:start + self.bptt + 1],
                                          dtype=np.int64))
        return ids[:-1], ids[1:]


def evaluation_windows(tokens: np.ndarray, batch_size: int,
                       bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """(inputs, targets), each (B, T), over ``batch_size`` streams of the whole part:
    every token but the first and the last ``< batch_size`` is predicted once."""
    length = stream_length(len(tokens), batch_size)
    for start in range(0, length, bptt):
        steps = min(bptt, length - start)
        rows = np.arange(batch_size)[:, None] * length + start + np.arange(steps + 1)
        ids = torch.from_numpy(np.asarray(tokens[rows], dtype=np.int64))  # (B, T + 1)
        yield ids[:, :-1], ids[:, 1:]
