"""The fused kernel: torch's own recurrent ops (oneDNN on CPU, cuDNN on GPU).

It runs only what those ops compute: the plain cell, with projection, stacking,
bidirectional, inter-layer dropout and padded lengths (through a packed batch).
Weight drop runs here too, since it only changes the weights handed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import _VF, Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def _flat(weights: Sequence[Sequence[Tensor | None]]) -> list[Tensor]:
    return [w for layer in weights for w in layer if w is not None]


def _run(op, x: Tensor, hx, weights, has_biases, num_layers, dropout, training,
         bidirectional, lengths: Tensor | None):
    flat = _flat(weights)
    if lengths is None:
        return op(x, hx, flat, has_biases, num_layers, dropout, training, bidirectional, False)
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    # torch's packed op wants the initial state in the packed (longest first) order
    hx_sorted = _permute(hx, packed.sorted_indices)
    result = op(packed.data, packed.batch_sizes, hx_sorted, flat, has_biases, num_layers,
                dropout, training, bidirectional)
    output_packed = packed._replace(data=result[0])
    output, _ = pad_packed_sequence(output_packed, total_length=x.shape[0])
    return (output, *_permute(tuple(result[1:]), packed.unsorted_indices))


def _permute(hx, order: Tensor):
    if isinstance(hx, tuple):
        return tuple(h.index_select(1, order) for h in hx)
    return hx.index_select(1, order)


def lstm(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: Sequence[Sequence[Tensor | None]],
    has_biases: bool,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    training: bool,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """x (T, B, I); weights per layer-direction (w_ih, w_hh, b_ih, b_hh, w_hr)."""
    output, h_n, c_n = _run(_VF.lstm, x, (h0, c0), weights, has_biases, num_layers, dropout,
                            training, bidirectional, lengths)
    return output, h_n, c_n


def gru(x: Tensor, h0: Tensor, weights, has_biases: bool, num_layers: int, bidirectional: bool,
        dropout: float, training: bool, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    output, h_n = _run(_VF.gru, x, h0, weights, has_biases, num_layers, dropout, training,
                       bidirectional, lengths)
    return output, h_n


def rnn(x: Tensor, h0: Tensor, weights, has_biases: bool, num_layers: int, bidirectional: bool,
        dropout: float, training: bool, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    output, h_n = _run(_VF.rnn_tanh, x, h0, weights, has_biases, num_layers, dropout, training,
                       bidirectional, lengths)
    return output, h_n
