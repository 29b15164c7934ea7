"""The LSTM cell: one time step, written as its gate equations.

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

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


def as_zoneout_pair(zoneout: float | tuple[float, float]) -> tuple[float, float]:
    """zoneout=p means p for both c and h; zoneout=(p_c, p_h) sets each."""
    if isinstance(zoneout, (tuple, list)):
        if len(zoneout) != 2:
            raise ValueError(f"zoneout must be a probability or a pair (p_c, p_h), got {zoneout!r}")
        pair = (float(zoneout[0]), float(zoneout[1]))
    else:
        pair = (float(zoneout), float(zoneout))
    for p in pair:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"zoneout probabilities must lie in [0, 1), got {zoneout!r}")
    return pair


def zoneout_weights(
    p: float, shape: tuple[int, ...], training: bool, like: Tensor
) -> Tensor | float:
    """Weight of the previous value: a 0/1 mask while training, its expectation p at evaluation."""
    if p == 0.0 or not training:
        return p
    return torch.bernoulli(torch.full(shape, p, dtype=like.dtype, device=like.device))


def check_probability(name: str, p: float) -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {p!r}")
    return float(p)


def check_size(name: str, value: int, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class LSTMCell(nn.Module):
    """One LSTM step as a module, compatible with torch.nn.LSTMCell.

    Same parameter names and shapes (weight_ih (4H, I), weight_hh (4H, H),
    bias_ih, bias_hh; gate order i, f, g, o) and the same call:
    ``h, c = cell(x, (h, c))`` with x (B, I) or unbatched (I,).

    Options: ``peephole``, ``layer_norm``, ``zoneout`` (p or (p_c, p_h)), and
    ``forget_bias`` (initial b_f; default 1.0 with biases, see LSTM).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
        zoneout: float | tuple[float, float] = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.bias = bias
        self.peephole = peephole
        self.layer_norm = layer_norm
        self.zoneout = as_zoneout_pair(zoneout)
        self.forget_bias = resolve_forget_bias(forget_bias, bias)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * H))
            self.bias_hh = nn.Parameter(torch.empty(4 * H))
        if peephole:
            self.weight_peephole = nn.Parameter(torch.empty(3, H))
        if layer_norm:
            self.layer_norm_ih = nn.Parameter(torch.empty(4 * H))
            self.layer_norm_hh = nn.Parameter(torch.empty(4 * H))
            self.layer_norm_cell_weight = nn.Parameter(torch.empty(H))
            self.layer_norm_cell_bias = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_lstm_parameters(self.named_parameters(), self.hidden_size, self.forget_bias)

    def weights(self) -> LSTMWeights:
        return LSTMWeights(
            self.weight_ih,
            self.weight_hh,
            getattr(self, "bias_ih", None),
            getattr(self, "bias_hh", None),
            None,
            getattr(self, "weight_peephole", None),
            getattr(self, "layer_norm_ih", None),
            getattr(self, "layer_norm_hh", None),
            getattr(self, "layer_norm_cell_weight", None),
            getattr(self, "layer_norm_cell_bias", None),
        )

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"LSTMCell expects input of shape (batch, {self.input_size}) or "
                f"({self.input_size},), got {tuple(input.shape)}"
            )
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            hx = (zeros, zeros)
        elif unbatched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        shape = (x.shape[0], self.hidden_size)
        h, c, _ = lstm_step(
            input_term(x, self.weights()),
            hx[0],
            hx[1],
            self.weights(),
            zoneout_c=zoneout_weights(self.zoneout[0], shape, self.training, x),
            zoneout_h=zoneout_weights(self.zoneout[1], shape, self.training, x),
        )
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}" + variant_repr(
            self.peephole, self.layer_norm, self.zoneout, self.forget_bias
        )


def resolve_forget_bias(forget_bias: float | None, bias: bool) -> float:
    """Default initial forget-gate bias: 1.0 (Jozefowicz et al. 2015) when there are biases."""
    if forget_bias is None:
        return 1.0 if bias else 0.0
    if not bias and forget_bias != 0.0:
        raise ValueError("forget_bias needs bias=True: with bias=False there is no b_f to set")
    return float(forget_bias)


def init_lstm_parameters(named_parameters, hidden_size: int, forget_bias: float) -> None:
    """torch.nn.LSTM's initialisation (uniform in +-1/sqrt(H)) plus the variants' own.

    The forget-gate bias b_f = b_ih[f] + b_hh[f] starts at exactly forget_bias
    (the pair is set to (forget_bias, 0)); layer-norm gains start at 1, its bias at 0.
    """
    bound = 1.0 / math.sqrt(hidden_size)
    H = hidden_size
    with torch.no_grad():
        for name, p in named_parameters:
            if name.startswith("layer_norm"):
                p.fill_(0.0 if "cell_bias" in name else 1.0)
            elif name.startswith("bias_ih"):
                p.uniform_(-bound, bound)
                p[H : 2 * H] = forget_bias
            elif name.startswith("bias_hh"):
                p.uniform_(-bound, bound)
                p[H : 2 * H] = 0.0
            else:
                p.uniform_(-bound, bound)


def variant_repr(peephole, layer_norm, zoneout, forget_bias) -> str:
    parts = []
    if peephole:
        parts.append("peephole=True")
    if layer_norm:
        parts.append("layer_norm=True")
    if any(zoneout):
        parts.append(f"zoneout={zoneout}")
    parts.append(f"forget_bias={forget_bias}")
    return ", " + ", ".join(parts)
