"""Parallel text: sentence pairs read from files, split, filtered, and batched by tokens.

Two ways to give pairs:

- one table, ``.tsv`` or ``.csv`` (``.txt`` read as TSV), with a header: columns
  ``source`` and ``target``, or the two columns it has, or those named by the caller;
- two line-aligned plain-text files, line n of the one translating line n of the other.

Splits go by source sentence (a stable hash of it, the same on every machine), so one
source sentence never sits in two parts. :class:`TokenBatches` holds encoded pairs and
plans batches of about the same lengths up to a token count (the training loop asks it
through ``batch_plan``); padding is passed on as lengths, never packed.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from lstmkit.data.length_buckets import size_budgeted_batches
from lstmkit.errors import LstmkitError

logger = logging.getLogger("lstmkit.data")

PARTS = ("train", "validation", "test")

@dataclass
class ParallelText:
    """Sentence pairs: ``sources[n]`` translates to ``targets[n]``; ``name`` says where
    they came from (for messages and tables)."""

    sources: list[str]
    targets: list[str]
    name: str = "pairs"

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int], name: str | None = None) -> ParallelText:
        return ParallelText([self.sources[i] for i in indices],
                            [self.targets[i] for i in indices], name or self.name)


def read_parallel(data: str | Path | Sequence[str | Path], source_column: str | None = None,
                  target_column: str | None = None) -> ParallelText:
    """Pairs from one table or two line-aligned files (see the module docstring).

    Pairs with an empty side are left out, with a warning that counts them.
    """
    paths = [Path(data)] if isinstance(data, (str, Path)) else [Path(p) for p in data]
    if not 1 <= len(paths) <= 2:
        raise LstmkitError(f"give parallel text as one table or two line-aligned files, got "
                           f"{len(paths)} paths (--data)")
    for path in paths:
        if not path.is_file():
            raise LstmkitError(f"{path} is not a file; give a .tsv/.csv table of pairs or two "
                               "line-aligned text files (--data)")
    if len(paths) == 1:
        sources, targets = _read_table(paths[0], source_column, target_column)
        name = paths[0].name
    else:
        if source_column or target_column:
            raise LstmkitError("--source-column and --target-column are for a table; two "
                               "line-aligned files have no columns")
        sources, targets = (read_lines(path) for path in paths)
        if len(sources) != len(targets):
            raise LstmkitError(
                f"the two files are not line-aligned: {paths[0]} has {len(sources)} lines and "
                f"{paths[1]} has {len(targets)}; line n of one must translate line n of the "
                "other")
        name = f"{paths[0].name} -> {paths[1].name}"
    kept = [n for n, (s, t) in enumerate(zip(sources, targets)) if s.strip() and t.strip()]
    if len(kept) < len(sources):
        dropped = [n for n in range(len(sources)) if not (sources[n].strip()
                                                          and targets[n].strip())]
        logger.warning("%s: left out %d pair(s) with an empty side (rows %s)", name,
                       len(dropped), ", ".join(str(n + 1) for n in dropped[:5])
                       + (" ..." if len(dropped) > 5 else ""))
    if not kept:
        raise LstmkitError(f"{name} holds no pair with text on both sides")
    text = ParallelText([sources[n].strip() for n in kept], [targets[n].strip() for n in kept],
                        name)
    return text


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise LstmkitError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); "
                           "convert it to UTF-8") from None


def _read_table(path: Path, source_column: str | None,
                target_column: str | None) -> tuple[list[str], list[str]]:
    import pandas as pd

    separator = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        # every cell is text: "NA", "null" or "1e5" are sentences, not missing values or
        # numbers; a TSV has no quoting (translations are full of quotation marks)
        table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_NONE if separator == "\t" else csv.QUOTE_MINIMAL,
                            encoding="utf-8")
    except UnicodeDecodeError as error:
        raise LstmkitError(f"{path} is not UTF-8 text ({error.reason}); convert it to "
                           "UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise LstmkitError(f"{path} is not a readable table ({str(error).strip()}); give "
                           "a TSV or CSV with a header row and two columns") from None
    columns = [str(c) for c in table.columns]
    if source_column or target_column:
        chosen = [source_column or "source", target_column or "target"]
    elif {"source", "target"} <= set(columns):
        chosen = ["source", "target"]
    elif len(columns) == 2:
        chosen = columns
    else:
        raise LstmkitError(f"{path} has columns {columns}; name the two to use with "
                           "--source-column and --target-column, or call them source and "
                           "target")
    missing = [c for c in chosen if c not in columns]
    if missing:
        raise LstmkitError(f"{path} has no column {missing[0]!r}; its columns are {columns}")
    return table[chosen[0]].tolist(), table[chosen[1]].tolist()


def source_part(source: str, validation_fraction: float, test_fraction: float) -> str:
    """The part ("train", "validation" or "test") a source sentence belongs to, from a
    stable hash of its lower-cased text: the same on every machine and for every target
    language, and one source sentence never in two parts."""
    digest = hashlib.sha256(source.strip().lower().encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0 ** 64  # uniform in [0, 1)
    if position < test_fraction:
        return "test"
    if position < test_fraction + validation_fraction:
        return "validation"
    return "train"


def split_by_source(text: ParallelText, validation_fraction: float,
                    test_fraction: float) -> dict[str, ParallelText]:
    """The pairs in three parts by :func:`source_part`."""
    members: dict[str, list[int]] = {part: [] for part in PARTS}
    for n, source in enumerate(text.sources):
        members[source_part(source, validation_fraction, test_fraction)].append(n)
    return {part: text.subset(indices, f"{text.name} ({part})")
            for part, indices in members.items()}


class TranslationBatch(NamedTuple):
    source: Tensor  # (B, S) token ids, padded with 0
    source_lengths: Tensor  # (B,)
    target_input: Tensor  # (B, T) <s> y_1 .. y_n, padded
    target_output: Tensor  # (B, T) y_1 .. y_n </s>, padded
    target_lengths: Tensor  # (B,) n + 1


class TokenBatches(torch.utils.data.Dataset):
    """Encoded pairs, batched by tokens: the training loop's data for a translation model.

    ``sources[n]`` and ``targets[n]`` are token ids without BOS/EOS; ``batch_tokens``
    bounds a batch's padded size: pairs x the longer side of its longest pair.
    """

    def __init__(self, sources: list[list[int]], targets: list[list[int]], batch_tokens: int,
                 bos_id: int, eos_id: int) -> None:
        self.sources, self.targets = sources, targets
        self.batch_tokens, self.bos_id, self.eos_id = batch_tokens, bos_id, eos_id
        # each pair's size in a batch: the longer side, the target with its </s>
        self.sizes = np.array([max(len(s), len(t) + 1) for s, t in zip(sources, targets)])
        longest = int(self.sizes.max()) if len(self.sizes) else 0
        if longest > batch_tokens:
            raise LstmkitError(f"a training pair has {longest} tokens, more than a whole batch "
                               f"of --batch-size {batch_tokens} tokens; raise --batch-size or "
                               "lower --max-length")

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        return self.sources[index], self.targets[index]

    def target_tokens(self) -> int:
        """Target tokens per epoch, </s> included (what throughput counts)."""
        return sum(len(t) + 1 for t in self.targets)

    def batch_plan(self, order: np.ndarray) -> list[np.ndarray]:
        """Global batches of pairs of about the same size within ``batch_tokens`` (see
        :func:`lstmkit.data.length_buckets.size_budgeted_batches`)."""
        return size_budgeted_batches(self.sizes, order, self.batch_tokens)

    def collate(self, items: list[tuple[list[int], list[int]]]) -> TranslationBatch:
        """Pad a list of pairs into one :class:`TranslationBatch`."""
        B = len(items)
        S = max(len(s) for s, _ in items)
        T = max(len(t) for _, t in items) + 1
        source = torch.zeros(B, S, dtype=torch.long)
        target_input = torch.zeros(B, T, dtype=torch.long)
        target_output = torch.zeros(B, T, dtype=torch.long)
        for b, (s, t) in enumerate(items):
            source[b, :len(s)] = torch.tensor(s, dtype=torch.long)
            target_input[b, :len(t) + 1] = torch.tensor([self.bos_id, *t], dtype=torch.long)
            target_output[b, :len(t) + 1] = torch.tensor([*t, self.eos_id], dtype=torch.long)
        return TranslationBatch(
            source, torch.tensor([len(s) for s, _ in items]), target_input, target_output,
            torch.tensor([len(t) + 1 for _, t in items]))
