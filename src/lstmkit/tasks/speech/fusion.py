"""Shallow fusion: an lstmkit character language model (``lstmkit lm``) scoring the
recogniser's beam.

    score(prefix) = log p_CTC(prefix | audio) + lambda log p_LM(prefix)

The language model reads characters; each character of the recogniser's alphabet maps
to the model's id for the same character.
Its state after a prefix is computed once and shared by every beam that extends it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lstmkit.errors import LstmkitError
from lstmkit.tasks.language_model import LanguageModel

Scored = tuple[Tensor, object, float]

START_CHARACTERS = ("\n", " ")
"""A sentence starts after one of these, as in the text the model learnt from."""


class CharacterLanguageModel:
    """A :class:`~lstmkit.tasks.speech.decoding.LanguageScorer` over ``alphabet`` (token
    k is ``alphabet[k - 1]``; 0 is CTC's blank) from a character language model."""

    def __init__(self, model: LanguageModel, alphabet: str) -> None:
        net, tokenizer = model._require_model()
        if tokenizer.kind != "char":
            raise LstmkitError(f"the language model reads {tokenizer.kind} tokens; fusion "
                               "needs a character model: train one with `lstmkit lm train "
                               "--tokenizer char`")
        self.net = net.eval()
        ids = [tokenizer.token_to_id(c) for c in alphabet]
        missing = [c for c, i in zip(alphabet, ids) if i == tokenizer.unk_id]
        if missing:
            raise LstmkitError(f"the language model's vocabulary lacks {''.join(missing)!r} of "
                               "the recogniser's alphabet; train it on text that has them")
        self.ids = torch.tensor([tokenizer.pad_id, *ids])  # speech token -> LM id
        start = next((c for c in START_CHARACTERS if tokenizer.token_to_id(c) != tokenizer.unk_id),
                     " ")
        self.start_id = tokenizer.token_to_id(start)
        self.end_id = self.start_id  # a sentence ends where the next would start

    @classmethod
    def load(cls, run_dir: str | Path, alphabet: str) -> CharacterLanguageModel:
        return cls(LanguageModel.load(run_dir), alphabet)

    # a state: (log-probabilities of the next speech token, the LM's (h, c), the
    # log-probability that the sentence ends here)

    def start(self) -> Scored:
        return self._after(self.start_id, None)

    def log_probs(self, state: Scored) -> Tensor:
        return state[0]

    def end_log_prob(self, state: Scored) -> float:
        return state[2]

    def advance(self, state: Scored, token: int) -> Scored:
        return self._after(int(self.ids[token]), state[1])

    @torch.no_grad()
    def _after(self, lm_id: int, lm_state: object) -> Scored:
        """The speech tokens' log-probabilities after reading ``lm_id`` from ``lm_state``,
        the state after it, and the log-probability of the sentence ending there."""
        output = self.net(torch.tensor([[lm_id]]), lm_state)
        lm_log_probs = torch.log_softmax(output.logits[0, -1], dim=-1)  # (V_lm,)
        speech = lm_log_probs[self.ids]
        speech[0] = float("-inf")  # the blank is CTC's, never the language model's
        return speech, output.state, float(lm_log_probs[self.end_id])
