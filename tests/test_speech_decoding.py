"""CTC decoding: best path, prefix beam search (against brute force), shallow fusion,
word timestamps and the alphabet's text <-> token mapping."""

import itertools
import math

import pytest
import torch

from lstmkit.errors import LstmkitError
from lstmkit.tasks.speech.decoding import (
    Hypothesis,
    Word,
    greedy_decode,
    labelling_log_prob,
    prefix_beam_search,
    text_to_tokens,
    tokens_to_text,
    word_timestamps,
)

ALPHABET = " abc"  # ids: 0 blank, 1 space, 2 a, 3 b, 4 c


def one_hot_log_probs(path: list[int], V: int, sharpness: float = 8.0) -> torch.Tensor:
    """(T, V) log-probabilities whose argmax at frame t is path[t], clearly."""
    logits = torch.zeros(len(path), V)
    logits[torch.arange(len(path)), torch.tensor(path)] = sharpness
    return logits.log_softmax(dim=1)


def collapse(path, blank=0):
    out, previous = [], blank
    for token in path:
        if token != blank and token != previous:
            out.append(token)
        previous = token
    return tuple(out)


def brute_force(log_probs: torch.Tensor) -> dict[tuple, float]:
    """log P(labelling) for every labelling: a sum over all V^T alignments."""
    T, V = log_probs.shape
    lp = log_probs.double().tolist()
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(V), repeat=T):
        value = sum(lp[t][k] for t, k in enumerate(path))
        label = collapse(path)
        totals[label] = (math.log(math.exp(totals[label]) + math.exp(value))
                         if label in totals else value)
    return totals


def test_greedy_collapses_repeats_and_drops_blanks():
    # a a _ a b b _ _ -> "aab", with the first frame of each emitted token
    hyp = greedy_decode(one_hot_log_probs([2, 2, 0, 2, 3, 3, 0, 0], V=5))
    assert hyp.tokens == [2, 2, 3]
    assert hyp.frames == [0, 3, 4]
    assert tokens_to_text(hyp.tokens, ALPHABET) == "aab"
    assert hyp.score == hyp.acoustic
    # acoustic is the probability over all alignments, at least the best path's
    lp = one_hot_log_probs([2, 2, 0, 2, 3, 3, 0, 0], V=5)
    best_path = float(lp.max(dim=1).values.sum())
    assert hyp.acoustic >= best_path - 1e-9
    assert greedy_decode(one_hot_log_probs([0, 0, 0], V=5)).tokens == []


@pytest.mark.parametrize("T", [4, 5])
@pytest.mark.parametrize("seed", range(6))
def test_beam_search_with_a_wide_beam_is_exact(T, seed):
    generator = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(T, 3, generator=generator) * 1.5).log_softmax(dim=1)
    exact = brute_force(log_probs)
    hyps = prefix_beam_search(log_probs, beam_size=1000, prune=float("-inf"))
    assert hyps[0].tokens == list(max(exact, key=exact.get))
    # every labelling is found with its exact probability, best first
    assert len(hyps) == len(exact)
    for hyp in hyps:
        assert hyp.acoustic == pytest.approx(exact[tuple(hyp.tokens)], abs=1e-9)
        assert hyp.score == pytest.approx(hyp.acoustic)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    # the forward algorithm agrees with the brute force too
    for label, value in exact.items():
        assert labelling_log_prob(log_probs, list(label)) == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_beam_search_never_worse_than_greedy(seed):
    generator = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(40, 6, generator=generator) * 2).log_softmax(dim=1)
    greedy = greedy_decode(log_probs)
    best = prefix_beam_search(log_probs, beam_size=8)[0]
    assert (labelling_log_prob(log_probs, best.tokens)
            >= labelling_log_prob(log_probs, greedy.tokens) - 1e-9)
    # the beam's acoustic score is its prefix's probability (a lower bound under pruning)
    assert best.acoustic <= labelling_log_prob(log_probs, best.tokens) + 1e-9


def test_beam_search_beats_best_path_when_alignments_add_up():
    # the best path is blank-blank (""), but "a" has more probability over its alignments
    probs = torch.tensor([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]]).log()
    assert greedy_decode(probs).tokens == []
    assert prefix_beam_search(probs, beam_size=4)[0].tokens == [1]


class PrefersAC:
    """A character model that strongly prefers "c" after "a" (state: the last token)."""

    V = 5

    def start(self):
        return None

    def log_probs(self, state):
        values = torch.full((self.V,), math.log(0.25))
        if state == 2:  # after "a"
            values[:] = -10.0
            values[4] = 0.0
        return values

    def end_log_prob(self, state):
        return math.log(0.5)

    def advance(self, state, token):
        return token


def test_language_model_flips_an_ambiguous_case_only_with_weight():
    # "a" then a frame slightly in favour of "b" over "c": acoustically "ab"
    probs = torch.tensor([
        [0.05, 0.0, 0.9, 0.025, 0.025],
        [0.05, 0.0, 0.02, 0.48, 0.45],
    ]).clamp_min(1e-6).log()
    plain = prefix_beam_search(probs, beam_size=8)
    assert plain[0].tokens == [2, 3]
    unweighted = prefix_beam_search(probs, beam_size=8, scorer=PrefersAC(), lm_weight=0.0)
    assert unweighted[0].tokens == [2, 3]
    fused = prefix_beam_search(probs, beam_size=8, scorer=PrefersAC(), lm_weight=1.0)
    assert fused[0].tokens == [2, 4]
    # the acoustic score is left alone; the total adds the weighted LM
    assert fused[0].acoustic == pytest.approx(labelling_log_prob(probs, [2, 4]))
    assert fused[0].score == pytest.approx(
        fused[0].acoustic + math.log(0.25) + 0.0 + math.log(0.5))


def test_insertion_bonus_favours_longer_hypotheses():
    # "a" is likelier than "aa" (which needs a_a) by less than one bonus of 3
    probs = torch.tensor([[0.55, 0.45, 1e-6]] * 3).log()
    assert prefix_beam_search(probs, beam_size=4)[0].tokens == [1]
    assert prefix_beam_search(probs, beam_size=4, insertion_bonus=3.0)[0].tokens == [1, 1]


def test_word_timestamps_of_a_hand_made_alignment():
    # frames: _ a a _ b _ " " " " c c _ a -> "ab ca"
    path = [0, 2, 2, 0, 3, 0, 1, 1, 4, 4, 0, 2]
    log_probs = one_hot_log_probs(path, V=5)
    for hyp in (greedy_decode(log_probs), prefix_beam_search(log_probs, beam_size=4)[0]):
        assert tokens_to_text(hyp.tokens, ALPHABET) == "ab ca"
        assert hyp.frames == [1, 4, 6, 8, 11]
        words = word_timestamps(hyp, ALPHABET, frame_seconds=0.02)
        assert [w.text for w in words] == ["ab", "ca"]
        assert words[0].start == pytest.approx(0.02) and words[0].end == pytest.approx(0.10)
        assert words[1].start == pytest.approx(0.16) and words[1].end == pytest.approx(0.24)
    # leading, doubled and trailing spaces make no empty words
    spaced = Hypothesis([1, 2, 1, 1, 3, 1], [0, 1, 2, 3, 4, 5], 0.0, 0.0)
    assert word_timestamps(spaced, ALPHABET, 1.0) == [Word("a", 1.0, 2.0), Word("b", 4.0, 5.0)]


def test_text_and_tokens_round_trip():
    text = "a cab bc"
    tokens = text_to_tokens(text, ALPHABET)
    assert tokens == [2, 1, 4, 2, 3, 1, 3, 4]
    assert tokens_to_text(tokens, ALPHABET) == text


def test_unknown_characters_are_named_with_a_fix():
    with pytest.raises(LstmkitError) as error:
        text_to_tokens("Abc d!", ALPHABET)
    message = str(error.value)
    assert "'A'" in message and "'d'" in message and "'!'" in message
    assert "normalise" in message and "retrain" in message
    with pytest.raises(LstmkitError, match="repeats"):
        text_to_tokens("ab", "abca")
