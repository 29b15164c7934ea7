"""The LSTM step: one time step, written as its gate equations.

    f_t = sigma(W_xf x_t + W_hf h_{t-1} + b_f)        forget gate
    i_t = sigma(W_xi x_t + W_hi h_{t-1} + b_i)        input gate
    g_t = tanh (W_xg x_t + W_hg h_{t-1} + b_g)        candidate
    c_t = f_t * c_{t-1} + i_t * g_t                   cell state (long-term memory)
    o_t = sigma(W_xo x_t + W_ho h_{t-1} + b_o)        output gate
    h_t = o_t * tanh(c_t)                             hidden state (short-term memory)

Variants are additive and leave the equations visible:

- peephole (Gers & Schmidhuber 2000): f and i also see p_f * c_{t-1}, p_i * c_{t-1};
  o sees p_o * c_t.
- layer norm (Ba et al. 2016): W_x x_t and W_h h_{t-1} are each normalised over
  their 4H gate pre-activations (with a learned gain) before b is added, and c_t
  is normalised (gain and bias) before its tanh; c_t itself is carried unnormalised.
- projection (Sak et al. 2014, torch's proj_size): h_t = W_hr (o_t * tanh(c_t)).
- recurrent dropout (Gal & Ghahramani 2016): h_{t-1} is multiplied by one mask per
  sequence before it enters W_h.
- zoneout (Krueger et al. 2016): each unit of c_t and h_t keeps its previous value
  with weight z (a 0/1 mask while training, the probability p at evaluation):
  c_t <- z_c * c_{t-1} + (1 - z_c) * c_t, and the same for h_t.

Parameters are laid out as torch.nn.LSTM lays them out: gate order i, f, g, o in
the rows of W_ih (4H, I) and W_hh (4H, P or H).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

LAYER_NORM_EPS = 1e-5


class LSTMWeights(NamedTuple):
    """The parameters of one LSTM layer in one direction (None where a variant is off)."""

    weight_ih: Tensor  # (4H, I)
    weight_hh: Tensor  # (4H, P) with projection, else (4H, H)
    bias_ih: Tensor | None = None  # (4H,)
    bias_hh: Tensor | None = None  # (4H,)
    weight_hr: Tensor | None = None  # (P, H)
    peephole: Tensor | None = None  # (3, H): p_i, p_f, p_o
    layer_norm_ih: Tensor | None = None  # (4H,) gain on W_x x
    layer_norm_hh: Tensor | None = None  # (4H,) gain on W_h h
    layer_norm_cell_weight: Tensor | None = None  # (H,)
    layer_norm_cell_bias: Tensor | None = None  # (H,)


class Gates(NamedTuple):
    """Gate activations of one step, each (B, H)."""

    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor


def _normalise(z: Tensor, gain: Tensor, bias: Tensor | None = None) -> Tensor:
    return F.layer_norm(z, (z.shape[-1],), gain, bias, LAYER_NORM_EPS)


def input_term(x: Tensor, w: LSTMWeights) -> Tensor:
    """W_x x + b for any number of steps at once: (..., I) -> (..., 4H).

    It does not depend on h, so the recurrence only has to add W_h h_{t-1}.
    """
    z = x @ w.weight_ih.T
    if w.layer_norm_ih is not None:
        z = _normalise(z, w.layer_norm_ih)
    if w.bias_ih is not None:
        z = z + (w.bias_ih + w.bias_hh)
    return z


def lstm_step(
    x_term: Tensor,
    h_prev: Tensor,
    c_prev: Tensor,
    w: LSTMWeights,
    recurrent_mask: Tensor | None = None,
    zoneout_c: Tensor | float = 0.0,
    zoneout_h: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor, Gates]:
    """One step of the cell. x_term is input_term(x_t): (B, 4H); returns h_t, c_t, gates."""
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    h_term = h_in @ w.weight_hh.T  # (B, 4H)
    if w.layer_norm_hh is not None:
        h_term = _normalise(h_term, w.layer_norm_hh)
    z_i, z_f, z_g, z_o = (x_term + h_term).chunk(4, dim=-1)
    if w.peephole is not None:
        p_i, p_f, p_o = w.peephole
        z_i = z_i + p_i * c_prev
        z_f = z_f + p_f * c_prev

    f = torch.sigmoid(z_f)
    i = torch.sigmoid(z_i)
    g = torch.tanh(z_g)
    c = f * c_prev + i * g
    if w.peephole is not None:
        z_o = z_o + p_o * c
    o = torch.sigmoid(z_o)
    if w.layer_norm_cell_weight is not None:
        h = o * torch.tanh(_normalise(c, w.layer_norm_cell_weight, w.layer_norm_cell_bias))
    else:
        h = o * torch.tanh(c)
    if w.weight_hr is not None:
        h = h @ w.weight_hr.T

    c = zoneout_c * c_prev + (1 - zoneout_c) * c
    h = zoneout_h * h_prev + (1 - zoneout_h) * h
    return h, c, Gates(i, f, g, o)
