"""The LSTM cell as a module, compatible with torch.nn.LSTMCell, and what the layers share.

The option checks, zoneout weights, initialisation and repr of the variants live
here; the step the cell runs, written as the gate equations with every variant,
is lstmkit.steps.lstm.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lstmkit.steps.lstm import LSTMWeights, input_term, lstm_step


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
