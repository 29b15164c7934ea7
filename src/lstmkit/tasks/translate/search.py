"""Batched beam search over one model or an ensemble (beam 1 is greedy decoding).

For B sentences and K beams the decoder runs N = B x K hypotheses at once. Each step:

    log p(y | ...) per hypothesis           ensemble: log of the members' mean probability
    candidates = score + log p              the best 2K of each sentence's K x V
    a candidate ending in </s> among the best K is finished, scored
        log p(Y) / ((5 + |Y|) / 6) ** alpha   (GNMT's length penalty)
    the best K others go on; their states are gathered from their parents' rows

A sentence is done once it has K finished hypotheses, or at its length limit
(``max_output_ratio`` x its length + 10 tokens, where </s> is forced); done sentences
leave the batch, so the rest run on fewer rows. The encoder states are never copied per
beam: the K queries of a sentence read its states together. A single model's softmax is
normalised only where it matters: each row's best 2K logits minus its log-sum-exp (a
row's ranking does not depend on its normaliser), not all V of them.
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
    sentence = torch.arange(B)  # which input sentence each batch position decodes
    tokens = torch.full((B * K,), bos_id, dtype=torch.long)
    scores = torch.full((B, K), float("-inf"))
    scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
    history = torch.zeros(B * K, 0, dtype=torch.long)  # (N, t) tokens so far
    attention = torch.zeros(B * K, 0, source.shape[1]) if keep_attention else None
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    for t in range(int(limits.max())):
        B = len(sentence)
        steps = [net.step(stepper, tokens, state, e, K)
                 for net, stepper, state, e in zip(nets, steppers, states, encoded)]
        if len(steps) == 1:
            values = steps[0].logits  # (N, V), fresh each step: changed in place
            values[:, [PAD_ID, bos_id]] = float("-inf")
            normaliser = torch.logsumexp(values, dim=1, keepdim=True)  # (N, 1)
        else:
            values = (torch.logsumexp(torch.stack([s.logits.log_softmax(-1) for s in steps]),
                                      dim=0) - math.log(len(steps)))  # log mean probability
            values[:, [PAD_ID, bos_id]] = float("-inf")
            normaliser = torch.zeros(len(values), 1)
        at_limit = (limits[sentence] == t + 1).repeat_interleave(K)  # (N,) must end now
        if at_limit.any():
            eos = values[at_limit, eos_id]
            values[at_limit] = float("-inf")
            values[at_limit, eos_id] = eos
        width = min(2 * K, values.shape[1])
        best_values, best_tokens = values.topk(width, dim=1)  # (N, 2K) each row's best
        candidates = scores.view(-1, 1) + best_values - normaliser  # (N, 2K)
        top_scores, top = candidates.view(B, K * width).topk(width, dim=1)  # (B, 2K)
        parent = top // width
        token = best_tokens.view(B, K * width).gather(1, top)
        ends = (token == eos_id) & torch.isfinite(top_scores)
        ends[:, K:] = False  # only the best K may finish (the others did not make the beam)
        for b, j in ends.nonzero().tolist():
            row = b * K + int(parent[b, j])
            log_prob = float(top_scores[b, j])
            finished[int(sentence[b])].append(Hypothesis(
                history[row].tolist(), log_prob / length_penalty(t + 1, alpha), log_prob,
                None if attention is None else
                torch.cat([attention[row], steps[0].attention[row].unsqueeze(0)])))
        # the best K candidates that do not end go on (stable: best first)
        rank = torch.where(token == eos_id, width, torch.arange(width))
        chosen = rank.argsort(dim=1, stable=True)[:, :K]  # (B, K)
        scores = top_scores.gather(1, chosen)
        scores[token.gather(1, chosen) == eos_id] = float("-inf")  # fewer than K others
        rows = (torch.arange(B).unsqueeze(1) * K + parent.gather(1, chosen)).view(-1)
        open_ = torch.tensor([len(finished[int(s)]) < K for s in sentence])
        if not open_.any():
            break
        if not open_.all():  # done sentences leave the batch
            kept = open_.nonzero().squeeze(1)  # (B',)
            rows = rows.view(B, K)[kept].view(-1)
            scores, chosen, token = scores[kept], chosen[kept], token[kept]
            sentence = sentence[kept]
            encoded = [net.select_sentences(e, kept) for net, e in zip(nets, encoded)]
        tokens = token.gather(1, chosen).view(-1)
        history = torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        if attention is not None:
            attention = torch.cat([attention[rows], steps[0].attention[rows].unsqueeze(1)],
                                  dim=1)
        states = [s.state.select(rows) for s in steps]
    return [sorted(f, key=lambda h: -h.score)[:n_best] for f in finished]
