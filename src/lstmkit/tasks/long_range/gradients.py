"""The mechanism: how far back the gradient reaches, ||dLoss/dh_t|| and ||dLoss/dc_t||
at every step t."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from lstmkit.nn import LSTM
from lstmkit.tasks.long_range.models import SequenceModel


def hidden_state_gradient_norms(model: SequenceModel, x: Tensor, target: Tensor,
                                loss: Callable[[Tensor, Tensor], Tensor]) -> dict[str, np.ndarray]:
    """||dLoss/dh_t|| for t = 1..T (and ||dLoss/dc_t|| for an LSTM), averaged over the batch.

    Run the model in float64 (``model.double()``) to follow a vanishing gradient
    below float32's smallest number, 1e-38.

    The sequence is run one step at a time with a zero perturbation added to the
    state after each step; the gradient with respect to that perturbation is the
    total derivative of the loss with respect to the state at t, through every
    later step. For the LSTM, dLoss/dh_t holds c_t fixed and dLoss/dc_t holds h_t
    fixed: the two paths the past reaches the future by.
    """
    encoder = model.encoder
    is_lstm = isinstance(encoder, LSTM)
    perturbations: list[tuple[Tensor, ...]] = []
    state = None
    hidden = None
    for t in range(x.shape[1]):
        _, state = encoder(x[:, t : t + 1], state)
        parts = state if is_lstm else (state,)
        perturbation = tuple(torch.zeros_like(s, requires_grad=True) for s in parts)
        perturbations.append(perturbation)
        parts = tuple(s + d for s, d in zip(parts, perturbation, strict=True))
        state = parts if is_lstm else parts[0]
        hidden = parts[0]
    # the last layer's h_T (1, B, H) -> (B, H); this model reads only the last step
    prediction = model.head(hidden[-1])
    loss(prediction, target).backward()

    def mean_norms(part: int) -> np.ndarray:
        # c_T reaches the loss only through h_T, which is perturbed after it: no gradient (nan)
        return np.array([np.nan if p[part].grad is None
                         else p[part].grad[-1].norm(dim=-1).mean().item() for p in perturbations])

    norms = {"h": mean_norms(0)}
    if is_lstm:
        norms["c"] = mean_norms(1)
    return norms
