"""Tokenizers: text to integer ids and back, for every task that reads text.

Three kinds behind one interface, built from training texts by :func:`build_tokenizer`:

- ``"char"``: one id per character (lossless for characters in the vocabulary);
- ``"word"``: words and punctuation marks (``\\w+`` or one non-space symbol), decoded
  joined by single spaces, so spacing is not preserved;
- ``"bpe"``: byte-level byte-pair encoding trained with the ``tokenizers`` library;
  every byte is in its alphabet, so it never produces an unknown and decodes exactly.

Every vocabulary starts with the same reserved tokens: ``<pad>`` (id 0, what padded
batches are filled with) and ``<unk>`` (id 1, what an out-of-vocabulary piece becomes),
then the caller's own ``specials`` (e.g. ``"<eos>"`` for a language model), then the
learned pieces. A tokenizer is saved as one JSON file beside the model
(:meth:`Tokenizer.save`, :func:`load_tokenizer`) and never pickled.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, read_json

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1
KINDS = ("char", "word", "bpe")
TOKENIZER_FILE = "tokenizer.json"
"""The file name tasks use for the tokenizer inside a run directory."""

_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


class Tokenizer(ABC):
    """Text <-> ids. ``pad_id`` is 0 and ``unk_id`` is 1 for every kind."""

    kind: str
    pad_id = PAD_ID
    unk_id = UNK_ID

    def __init__(self, lowercase: bool, specials: Sequence[str]) -> None:
        self.lowercase = bool(lowercase)
        self.specials = tuple(specials)

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, reserved tokens included: ids run from 0 to vocab_size - 1."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; pieces outside the vocabulary become ``unk_id``."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; padding is dropped, unknowns read ``<unk>`` (char and word)."""

    @abstractmethod
    def id_to_token(self, token_id: int) -> str:
        """The piece an id stands for, as it appears in the vocabulary."""

    @abstractmethod
    def token_to_id(self, token: str) -> int:
        """The id of a piece of the vocabulary (a special token included), else ``unk_id``."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """What, beside kind, lowercase and specials, rebuilds this tokenizer."""

    def encode_many(self, texts: Iterable[str]) -> list[list[int]]:
        """Ids of each text (BPE encodes them in parallel)."""
        return [self.encode(text) for text in texts]

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text`` as the model sees them (for labelling plots)."""
        return [self.id_to_token(i) for i in self.encode(text)]

    def count_unknowns(self, encoded: Iterable[Sequence[int]]) -> int:
        """How many ids in already-encoded texts are ``unk_id``."""
        return sum(sum(1 for i in ids if i == self.unk_id) for ids in encoded)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :func:`tokenizer_from_json` turns back into this."""
        return {"kind": self.kind, "lowercase": self.lowercase,
                "specials": list(self.specials), **self._state()}

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to one JSON file, atomically."""
        atomic_write_json(path, self.to_json())

    def _normalise(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, vocab_size={self.vocab_size})"


class VocabularyTokenizer(Tokenizer):
    """Character or word tokenizer: split the text, look each piece up in a vocabulary."""

    def __init__(self, kind: str, vocabulary: Sequence[str], lowercase: bool = False,
                 specials: Sequence[str] = ()) -> None:
        if kind not in ("char", "word"):
            raise ValueError(f"VocabularyTokenizer kind must be 'char' or 'word', got {kind!r}")
        super().__init__(lowercase, specials)
        self.kind = kind
        self.vocabulary = list(vocabulary)
        self._ids = {token: index for index, token in enumerate(self.vocabulary)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def split(self, text: str) -> list[str]:
        """The pieces of ``text`` before lookup: characters, or words and punctuation."""
        text = self._normalise(text)
        return list(text) if self.kind == "char" else _WORD_PATTERN.findall(text)

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(piece, UNK_ID) for piece in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        separator = "" if self.kind == "char" else " "
        return separator.join(self.vocabulary[i] for i in ids if i != PAD_ID)

    def id_to_token(self, token_id: int) -> str:
        return self.vocabulary[token_id]

    def token_to_id(self, token: str) -> int:
        return self._ids.get(token, UNK_ID)

    def _state(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}


class BPETokenizer(Tokenizer):
    """Byte-level BPE from the ``tokenizers`` library (its model is kept as its own JSON)."""

    kind = "bpe"

    def __init__(self, model: Any, lowercase: bool = False, specials: Sequence[str] = ()) -> None:
        super().__init__(lowercase, specials)
        self.model = model  # a tokenizers.Tokenizer

    @property
    def vocab_size(self) -> int:
        return self.model.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.model.encode(self._normalise(text)).ids

    def encode_many(self, texts: Iterable[str]) -> list[list[int]]:
        return [e.ids for e in self.model.encode_batch([self._normalise(t) for t in texts])]

    def decode(self, ids: Iterable[int]) -> str:
        return self.model.decode([i for i in ids if i != PAD_ID], skip_special_tokens=False)

    def id_to_token(self, token_id: int) -> str:
        return self.model.id_to_token(token_id)

    def token_to_id(self, token: str) -> int:
        found = self.model.token_to_id(token)
        return UNK_ID if found is None else found

    def tokens(self, text: str) -> list[str]:
        # byte-level pieces spell bytes with stand-in characters; show each piece as text
        # (a piece holding part of a multi-byte character shows as U+FFFD)
        return [self.model.decode([i], skip_special_tokens=False) for i in self.encode(text)]

    def _state(self) -> dict[str, Any]:
        return {"model": self.model.to_str()}


def build_tokenizer(
    kind: str,
    texts: Iterable[str],
    *,
    vocab_size: int | None = None,
    min_count: int = 1,
    lowercase: bool = False,
    specials: Sequence[str] = (),
) -> Tokenizer:
    """Learn a tokenizer of ``kind`` ("char", "word" or "bpe") from ``texts``.

    ``vocab_size`` caps the number of ids, reserved tokens included (char and word keep
    the most frequent pieces; BPE defaults to 2000 and needs at least 256 + reserved);
    ``min_count`` drops pieces seen fewer times (char and word); ``lowercase`` folds
    case before anything else; ``specials`` are extra reserved tokens after ``<pad>``
    and ``<unk>``, never produced by ``encode`` but available through ``token_to_id``.
    """
    if kind not in KINDS:
        raise LstmkitError(f"unknown tokenizer {kind!r}; choose one of {', '.join(KINDS)}")
    reserved = [PAD, UNK, *specials]
    if len(set(reserved)) != len(reserved):
        raise LstmkitError(f"special tokens must be distinct and not {PAD} or {UNK}: {specials}")
    if vocab_size is not None and vocab_size <= len(reserved):
        raise LstmkitError(
            f"vocab_size {vocab_size} leaves no room beside the {len(reserved)} reserved "
            "tokens; choose a larger vocabulary size"
        )
    if min_count < 1:
        raise LstmkitError(f"min_count must be at least 1, got {min_count}")
    texts = list(texts)
    if kind == "bpe":
        return _train_bpe(texts, vocab_size or 2000, lowercase, reserved)
    splitter = VocabularyTokenizer(kind, reserved, lowercase, specials)
    counts = Counter(piece for text in texts for piece in splitter.split(text))
    for token in reserved:
        counts.pop(token, None)
    # most frequent first; ties in piece order so the same texts give the same ids
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    kept = [token for token, count in ranked if count >= min_count]
    if vocab_size is not None:
        kept = kept[: vocab_size - len(reserved)]
    if not kept:
        raise LstmkitError(
            f"no {kind} seen at least min_count={min_count} times in the training texts; "
            "give more text or lower the minimum count"
        )
    return VocabularyTokenizer(kind, reserved + kept, lowercase, specials)


def _train_bpe(texts: list[str], vocab_size: int, lowercase: bool,
               reserved: list[str]) -> BPETokenizer:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(reserved):
        raise LstmkitError(
            f"a byte-level BPE vocabulary needs at least {len(alphabet) + len(reserved)} "
            f"entries (256 bytes and the reserved tokens), got vocab_size={vocab_size}"
        )
    if not any(texts):
        raise LstmkitError("no training text for the BPE tokenizer: every text is empty")
    model = HFTokenizer(models.BPE(unk_token=UNK))
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=reserved,
                                  initial_alphabet=alphabet, show_progress=False)
    model.train_from_iterator([t.lower() if lowercase else t for t in texts], trainer=trainer)
    return BPETokenizer(model, lowercase, reserved[2:])


def tokenizer_from_json(state: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_json`'s dict."""
    try:
        kind, lowercase, specials = state["kind"], state["lowercase"], state["specials"]
        if kind == "bpe":
            from tokenizers import Tokenizer as HFTokenizer

            return BPETokenizer(HFTokenizer.from_str(state["model"]), lowercase, specials)
        if kind in ("char", "word"):
            return VocabularyTokenizer(kind, state["vocabulary"], lowercase, specials)
    except Exception as error:  # a missing key, a wrong type, or tokenizers' own error
        raise LstmkitError(f"the saved tokenizer is damaged ({error}); train again") from error
    raise LstmkitError(f"the saved tokenizer has an unknown kind {kind!r}; train again")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer written by :meth:`Tokenizer.save`."""
    state = read_json(path)
    if not isinstance(state, dict):
        raise LstmkitError(f"{path} does not hold a tokenizer; the file is damaged")
    return tokenizer_from_json(state)


__all__ = ["KINDS", "PAD", "PAD_ID", "TOKENIZER_FILE", "UNK", "UNK_ID", "BPETokenizer",
           "Tokenizer", "VocabularyTokenizer", "build_tokenizer", "load_tokenizer",
           "tokenizer_from_json"]
