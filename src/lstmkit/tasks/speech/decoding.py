"""Decoding CTC outputs: best path, prefix beam search with shallow fusion, timestamps.

A CTC network (Graves et al. 2006) emits, at each of T frames, log-probabilities over V
tokens: 0 is the blank, and token k >= 1 is the character ``alphabet[k - 1]`` (the space
" " separates words). An alignment pi (one token per frame) spells the labelling B(pi)
got by merging repeats and then dropping blanks ("_aa_b" -> "ab"), and

    P(y | x) = sum over alignments pi with B(pi) = y of  prod_t p_t(pi_t)

Best path (``greedy_decode``) takes the argmax of each frame and collapses it: fast, and
usually close, but the most probable alignment need not spell the most probable labelling.
Prefix beam search (Hannun et al. 2014) keeps, for each of the best prefixes l so far,

    p_b(l)    the probability of the frames so far spelling l and ending in a blank
    p_nb(l)   the same, ending in l's last character

and at frame t with probabilities p(.) moves them on (all in log space):

    blank:                  p_b'(l)   += (p_b(l) + p_nb(l)) p(_)
    repeat of l's last c:   p_nb'(l)  += p_nb(l) p(c)         (merges into the same c)
                            p_nb'(lc) += p_b(l) p(c)          (a blank came in between)
    any other character c:  p_nb'(lc) += (p_b(l) + p_nb(l)) p(c)

Prefixes reached in several ways are merged (their probabilities add), so a prefix's
``p_b + p_nb`` is the probability of that prefix over all its alignments. Beams are ranked by

    log (p_b + p_nb)  +  lm_weight * log P_lm(l)  +  insertion_bonus * |l|

where P_lm is a character language model fused shallowly (its factor depends on the prefix
only, so it is added at ranking and the acoustic probabilities stay pure); at the end each
beam adds lm_weight * log P_lm(</s> | l). Each frame considers only its best ``top_k``
tokens whose log-probability reaches ``prune``, which is what makes it fast.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from lstmkit.errors import LstmkitError

BLANK = 0
SPACE = " "
NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    """One decoding: token ids (no blanks); the output step (frame of the CTC outputs)
    at which each token is emitted on the most probable route into the prefix; the total
    log score (acoustic + weighted LM + insertion bonus); and the log probability of the
    tokens under the CTC outputs alone (over all their alignments)."""

    tokens: list[int]
    frames: list[int]
    score: float
    acoustic: float


@dataclass
class Word:
    """A word of a transcript and where it lies in the audio, in seconds."""

    text: str
    start: float
    end: float


class LanguageScorer(Protocol):
    """A character language model for shallow fusion. States are immutable values: one
    state may be shared by many beams, so ``advance`` returns a new state."""

    def start(self) -> object:
        """The state before any character."""
        ...

    def log_probs(self, state: object) -> Tensor:
        """(V,) log P(next token | state) over token ids; index 0 (the blank) is unused."""
        ...

    def end_log_prob(self, state: object) -> float:
        """log P(end of sentence | state)."""
        ...

    def advance(self, state: object, token: int) -> object:
        """The state after ``token`` follows ``state``."""
        ...


def _log_add(a: float, b: float) -> float:
    """log(e^a + e^b) without overflow (math.* on floats: far cheaper than torch here)."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _as_array(log_probs: Tensor) -> np.ndarray:
    """(T, V) float64 numpy copy: one conversion, then no per-element torch calls."""
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {tuple(log_probs.shape)}")
    return log_probs.detach().to(device="cpu", dtype=torch.float64).numpy()


def labelling_log_prob(log_probs: Tensor, tokens: Sequence[int], blank: int = BLANK) -> float:
    """log P(tokens | x): the CTC forward algorithm over all alignments spelling ``tokens``
    (-inf when T frames cannot hold them)."""
    lp = _as_array(log_probs)
    T = lp.shape[0]
    if T == 0:
        return 0.0 if not tokens else NEG_INF
    extended = [blank]  # l' = _ l1 _ l2 _ ... _
    for token in tokens:
        extended += [token, blank]
    S = len(extended)
    ext = np.array(extended)
    # a state may skip the blank before it when its character differs from the one before
    can_skip = np.zeros(S, dtype=bool)
    can_skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full(S, NEG_INF)
    alpha[0] = lp[0, ext[0]]
    if S > 1:
        alpha[1] = lp[0, ext[1]]
    for t in range(1, T):
        stay = alpha
        step = np.concatenate([[NEG_INF], alpha[:-1]])
        skip = np.where(can_skip, np.concatenate([[NEG_INF, NEG_INF], alpha[:-2]])[:S],
                        NEG_INF)
        alpha = np.logaddexp(np.logaddexp(stay, step), skip) + lp[t, ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if S > 1 else alpha[-1])


def greedy_decode(log_probs: Tensor, blank: int = BLANK) -> Hypothesis:
    """Best path decoding of (T, V) log-probabilities: each frame's argmax, repeats merged,
    blanks dropped. ``score`` and ``acoustic`` are the log probability of the resulting
    tokens over all their alignments (not just the best path), so they compare directly
    with a beam search's."""
    best = log_probs.argmax(dim=1).tolist() if log_probs.shape[0] else []
    tokens: list[int] = []
    frames: list[int] = []
    previous = blank
    for t, token in enumerate(best):
        if token != blank and token != previous:
            tokens.append(token)
            frames.append(t)
        previous = token
    acoustic = labelling_log_prob(log_probs, tokens, blank)
    return Hypothesis(tokens, frames, acoustic, acoustic)


class _Prefix:
    """A prefix that has been in the beam: its last token and parent (the prefix is the
    path from the root), its key ``parent.index * V + token`` and, computed once and shared
    by every beam and frame that reaches it, the language model's state and next-token
    log-probabilities. Candidate extensions are only keys until they make the beam, so a
    frame creates at most ``beam_size`` of these rather than one per candidate."""

    __slots__ = ("index", "key", "token", "parent", "length", "_state", "_next")

    def __init__(self, index: int, key: int, token: int, parent: _Prefix | None) -> None:
        self.index, self.key = index, key
        self.token = token  # the last token (-1 at the root: nothing repeats it)
        self.parent = parent
        self.length = 0 if parent is None else parent.length + 1
        self._state: object = None
        self._next: list[float] | None = None

    def state(self, scorer: LanguageScorer) -> object:
        # advanced lazily: only prefixes that are extended or finish need a state
        if self._state is None:
            self._state = (scorer.start() if self.parent is None
                           else scorer.advance(self.parent.state(scorer), self.token))
        return self._state

    def next_log_probs(self, scorer: LanguageScorer) -> list[float]:
        if self._next is None:
            values = scorer.log_probs(self.state(scorer))
            self._next = (values.tolist() if isinstance(values, (Tensor, np.ndarray))
                          else list(values))
        return self._next

    def tokens(self) -> list[int]:
        out: list[int] = []
        node: _Prefix | None = self
        while node is not None and node.parent is not None:
            out.append(node.token)
            node = node.parent
        return out[::-1]


def _frame_candidates(lp: np.ndarray, top_k: int, prune: float) -> list[list[tuple[int, float]]]:
    """Per frame, the (token, log p) of its best ``top_k`` tokens reaching ``prune``, best
    first; the best token always stays so that no frame is empty."""
    top_k = max(1, min(top_k, lp.shape[1]))
    order = np.argsort(-lp, axis=1, kind="stable")[:, :top_k]  # (T, k)
    values = np.take_along_axis(lp, order, axis=1)  # (T, k)
    out = []
    for tokens, logs in zip(order.tolist(), values.tolist()):
        kept = [(c, p) for c, p in zip(tokens, logs) if p >= prune and p > NEG_INF]
        out.append(kept or [(tokens[0], logs[0])])
    return out


def _frames_list(frames: tuple | None) -> list[int]:
    # frames are a linked list (t, earlier) so extending a prefix copies nothing
    out: list[int] = []
    while frames is not None:
        out.append(frames[0])
        frames = frames[1]
    return out[::-1]


def prefix_beam_search(log_probs: Tensor, beam_size: int = 8, blank: int = BLANK,
                       scorer: LanguageScorer | None = None, lm_weight: float = 0.0,
                       insertion_bonus: float = 0.0, prune: float = -12.0,
                       top_k: int | None = None) -> list[Hypothesis]:
    """The CTC prefix beam search of (T, V) log-probabilities: up to ``beam_size``
    hypotheses, best first by score. With a ``scorer`` and ``lm_weight`` != 0, each new
    character adds ``lm_weight`` * log P_lm(character | prefix) and the end adds
    ``lm_weight`` * log P_lm(</s> | prefix); ``insertion_bonus`` is added per character.
    Per frame only the best ``top_k`` tokens (all V when None) with log p >= ``prune``
    are tried. A token's frame is where the prefix's most probable way into the beam
    emitted it."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    lp = _as_array(log_probs)
    T, V = lp.shape
    candidates = _frame_candidates(lp, V if top_k is None else top_k, prune)
    use_lm = scorer is not None and lm_weight != 0.0
    log_add = _log_add

    def rank(entry: list) -> float:
        return log_add(entry[0], entry[1]) + entry[4]

    root = _Prefix(0, -1, -1, None)
    nodes = {root.key: root}  # key -> prefix, for every prefix that has made the beam
    by_index = [root]
    # key -> [log p_b, log p_nb, frames of its tokens as a linked list (t, earlier), log of
    # the largest single contribution this frame, lm_weight * log P_lm + bonus * length].
    # A prefix takes the frames of the way into it that brought the most probability, so a
    # token's frame is where its prefix's dominant alignments emit it (not where a stray
    # path first spelt it).
    beam: dict[int, list] = {root.key: [0.0, NEG_INF, None, 0.0, 0.0]}
    for t in range(T):
        following: dict[int, list] = {}
        for key, (p_b, p_nb, frames, _, fused) in beam.items():
            node = nodes[key]
            p_total = log_add(p_b, p_nb)
            last, base = node.token, node.index * V
            if use_lm:
                lm_next = node.next_log_probs(scorer)
            for c, p in candidates[t]:
                if c == blank or c == last:  # the prefix stays as it is
                    slot, gain = (0, p_total + p) if c == blank else (1, p_nb + p)
                    entry = following.get(key)
                    if entry is None:
                        entry = following[key] = [NEG_INF, NEG_INF, frames, gain, fused]
                    elif gain > entry[3]:
                        entry[2], entry[3] = frames, gain
                    entry[slot] = log_add(entry[slot], gain)
                    if c == blank:
                        continue
                    gain = p_b + p  # a repeated character is new only after a blank
                    if gain == NEG_INF:
                        continue
                else:
                    gain = p_total + p
                child = base + c
                entry = following.get(child)
                if entry is None:
                    following[child] = [NEG_INF, gain, (t, frames), gain, fused
                                        + (lm_weight * lm_next[c] if use_lm else 0.0)
                                        + insertion_bonus]
                else:
                    entry[1] = log_add(entry[1], gain)
                    if gain > entry[3]:
                        entry[2], entry[3] = (t, frames), gain
        if len(following) > beam_size:
            kept = heapq.nlargest(beam_size, following, key=lambda k: rank(following[k]))
            following = {k: following[k] for k in kept}
        for key in following:
            if key not in nodes:
                parent, token = by_index[key // V], key % V
                nodes[key] = node = _Prefix(len(by_index), key, token, parent)
                by_index.append(node)
        beam = following
    hypotheses = []
    for key, entry in beam.items():
        node = nodes[key]
        score = rank(entry)
        if use_lm:
            score += lm_weight * float(scorer.end_log_prob(node.state(scorer)))
        hypotheses.append(Hypothesis(node.tokens(), _frames_list(entry[2]), score,
                                     log_add(entry[0], entry[1])))
    hypotheses.sort(key=lambda h: -h.score)
    return hypotheses


def _check_alphabet(alphabet: str) -> None:
    repeated = sorted({ch for ch in alphabet if alphabet.count(ch) > 1})
    if repeated:
        raise LstmkitError(f"the alphabet repeats {', '.join(map(repr, repeated))}; "
                           "list each character once")


def tokens_to_text(tokens: Sequence[int], alphabet: str) -> str:
    """The text of token ids: token k is ``alphabet[k - 1]`` (blanks, id 0, are dropped)."""
    out = []
    for token in tokens:
        if token == BLANK:
            continue
        if not 1 <= token <= len(alphabet):
            raise ValueError(f"token id {token} is outside 1..{len(alphabet)} for an "
                             f"alphabet of {len(alphabet)} characters")
        out.append(alphabet[token - 1])
    return "".join(out)


def transcript_text(tokens: Sequence[int], alphabet: str) -> str:
    """The words of token ids with one space between them: CTC may emit a space first,
    last or twice, which a transcript does not have."""
    return " ".join(word for word in tokens_to_text(tokens, alphabet).split(" ") if word)


def text_to_tokens(text: str, alphabet: str) -> list[int]:
    """The token ids of ``text`` (character ``alphabet[k - 1]`` is id k); characters
    outside the alphabet are a user error that names them."""
    _check_alphabet(alphabet)
    index = {ch: k + 1 for k, ch in enumerate(alphabet)}
    unknown = sorted({ch for ch in text if ch not in index})
    if unknown:
        raise LstmkitError(
            f"the transcript has characters outside the alphabet "
            f"{alphabet!r}: {', '.join(map(repr, unknown))}; normalise the transcripts "
            f"(e.g. lower-case them, drop punctuation) or retrain with these characters "
            f"in the alphabet")
    return [index[ch] for ch in text]


def word_timestamps(hypothesis: Hypothesis, alphabet: str,
                    frame_seconds: float) -> list[Word]:
    """The words of a hypothesis (split at spaces) with start = first frame of the word's
    first character and end = frame of its last character + 1, in seconds;
    ``frame_seconds`` is the duration of one frame of the CTC outputs (a recogniser that
    stacks k feature frames per step: k hops)."""
    if len(hypothesis.frames) != len(hypothesis.tokens):
        raise ValueError(f"the hypothesis has {len(hypothesis.tokens)} tokens but "
                         f"{len(hypothesis.frames)} frames")
    words: list[Word] = []
    chars: list[str] = []
    first = last = 0
    for token, frame in zip(hypothesis.tokens, hypothesis.frames):
        ch = tokens_to_text([token], alphabet)
        if ch == SPACE:
            if chars:
                words.append(Word("".join(chars), first * frame_seconds,
                                  (last + 1) * frame_seconds))
                chars = []
            continue
        if not chars:
            first = frame
        chars.append(ch)
        last = frame
    if chars:
        words.append(Word("".join(chars), first * frame_seconds, (last + 1) * frame_seconds))
    return words
