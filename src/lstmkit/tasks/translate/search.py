"""Batched beam search over one model or an ensemble (beam 1 is greedy decoding).

For B sentences and K beams the decoder runs N = B x K hypotheses at once. Each step:

    log p(y | ...) per hypothesis           ensemble: log of the members' mean probability
    candidates = score + log p              (B, K x V), the best 2K kept
    a candidate ending in </s> among the best K is finished, scored
        log p(Y) / ((5 + |Y|) / 6) ** alpha   (GNMT's length penalty)
    the best K others go on; their states are gathered from their parents' rows

A sentence is done once it has K finished hypotheses, or at its length limit
(``max_output_ratio`` x its length + 10 tokens, where </s> is forced). The encoder
states are never copied per beam: the K queries of a sentence read its states together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lstmkit.data.tokenizers import PAD_ID
from lstmkit.tasks.translate.network import TranslationNet


@dataclass
class Hypothesis:
    """One translation of a sentence: target ids without <s> and </s>, its length-
    normalised score, its log-probability, and (when asked) the attention of each output
    token over the source, (len(tokens) + 1, S) with the row of </s> last."""

    tokens: list[int]
    score: float
    log_prob: float
    attention: Tensor | None = None


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha (Wu et al. 2016); alpha 0 ranks by log p."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(nets: Sequence[TranslationNet], source: Tensor, lengths: Tensor, *,
                beam_size: int, bos_id: int, eos_id: int, alpha: float = 1.0,
                max_output_ratio: float = 2.0, n_best: int = 1,
                keep_attention: bool = False) -> list[list[Hypothesis]]:
    """The ``n_best`` hypotheses of each sentence of source (B, S) with lengths (B,),
    best first. ``nets`` decode together as an ensemble (they share the target
    vocabulary); ``keep_attention`` keeps the first member's attention."""
    B, K = source.shape[0], beam_size
    if not 1 <= n_best <= K:
        raise ValueError(f"n_best must lie in 1..beam_size={K}, got {n_best}")
    for net in nets:
        net.eval()
    encoded = [net.encode(source, lengths) for net in nets]
    steppers = [net.stepper() for net in nets]
    states = [net.initial_state(e, K) for net, e in zip(nets, encoded)]
    limits = (lengths.double() * max_output_ratio + 10).long()  # (B,) tokens, </s> included
    tokens = torch.full((B * K,), bos_id, dtype=torch.long)
    scores = torch.full((B, K), float("-inf"))
    scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
    history = torch.zeros(B * K, 0, dtype=torch.long)  # (N, t) tokens so far
    attention = torch.zeros(B * K, 0, source.shape[1]) if keep_attention else None
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    offsets = (torch.arange(B) * K).unsqueeze(1)  # (B, 1) first row of each sentence
    for t in range(int(limits.max())):
        steps = [net.step(stepper, tokens, state, e, K)
                 for net, stepper, state, e in zip(nets, steppers, states, encoded)]
        log_probs = (steps[0].log_probs if len(steps) == 1 else
                     torch.logsumexp(torch.stack([s.log_probs for s in steps]), dim=0)
                     - math.log(len(steps)))  # (N, V)
        log_probs[:, PAD_ID] = float("-inf")
        log_probs[:, bos_id] = float("-inf")
        at_limit = (limits == t + 1).repeat_interleave(K)  # (N,) must end now
        if at_limit.any():
            forced = torch.full_like(log_probs[at_limit], float("-inf"))
            forced[:, eos_id] = log_probs[at_limit][:, eos_id]
            log_probs[at_limit] = forced
        V = log_probs.shape[1]
        candidates = (scores.view(-1, 1) + log_probs).view(B, K * V)
        top_scores, top_ids = candidates.topk(min(2 * K, K * V), dim=1)  # (B, 2K)
        parent, token = top_ids // V, top_ids % V
        ends = (token == eos_id) & torch.isfinite(top_scores)
        ends[:, K:] = False  # only the best K may finish (the others did not make the beam)
        ends &= ~done.unsqueeze(1)
        for b, j in ends.nonzero().tolist():
            row = b * K + int(parent[b, j])
            log_prob = float(top_scores[b, j])
            finished[b].append(Hypothesis(
                history[row].tolist(), log_prob / length_penalty(t + 1, alpha), log_prob,
                None if attention is None else
                torch.cat([attention[row], steps[0].attention[row].unsqueeze(0)])))
        # the best K candidates that do not end go on (stable: best first)
        rank = torch.where(token == eos_id, len(top_ids[0]), torch.arange(top_ids.shape[1]))
        chosen = rank.argsort(dim=1, stable=True)[:, :K]  # (B, K)
        scores = top_scores.gather(1, chosen)
        scores[token.gather(1, chosen) == eos_id] = float("-inf")  # fewer than K others
        rows = (offsets + parent.gather(1, chosen)).view(-1)  # (N,) parent of each new row
        tokens = token.gather(1, chosen).view(-1)
        history = torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        if attention is not None:
            attention = torch.cat([attention[rows], steps[0].attention[rows].unsqueeze(1)],
                                  dim=1)
        states = [s.state.select(rows) for s in steps]
        done |= torch.tensor([len(f) >= K for f in finished])
        scores[done] = float("-inf")
        if bool(done.all()):
            break
    return [sorted(f, key=lambda h: -h.score)[:n_best] for f in finished]
