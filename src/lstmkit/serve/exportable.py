"""The LSTM as a graph that exports: one time loop that ONNX keeps as a loop.

Goals: export every lstmkit.nn.LSTM configuration (stacked, bidirectional, projected,
peephole, LayerNorm, zoneout, padded batches with ``lengths=``) to a graph that is
right at every sequence length and batch size, computed by the project's own step
maths (lstmkit.steps.lstm), not a copy of the equations.

The layer's kernels loop over time in Python, which an exporter unrolls to the length
of its example: a graph that is wrong at any other length. Here the time loop is
torch's ``scan`` operator, which ``torch.onnx.export(..., dynamo=True)`` turns into
one ONNX Scan node. Stacking layers and directions is the reference kernel's own
composition (``run_stack``), and the reversal of padded sequences its own gather.

The fast path: the plain cell (no projection, no variant active at evaluation) is
exported as ONNX's own LSTM operator, which onnxruntime runs several times faster
than a Scan at small batches. torch.nn.LSTM cannot carry it there: torch.export gives
aten.lstm's output a fixed length (the example's), so anything computed from it
would be fixed too; the operator is emitted directly instead, with symbolic shapes.

:func:`exportable` swaps every lstmkit LSTM of a network for an :class:`ExportableLSTM`,
so a task network's forward code exports unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch._higher_order_ops.scan import scan

from lstmkit.kernels.reference import run_stack
from lstmkit.kernels.sequence import active_mask
from lstmkit.nn.lstm import LSTM
from lstmkit.steps.lstm import LSTMWeights, input_term, lstm_step

State = tuple[Tensor, Tensor]


class ExportableLSTM(nn.Module):
    """An lstmkit LSTM in evaluation mode, computed by a graph that exports.

    Same call as the layer: ``forward(x, state=None, lengths=None) -> (output,
    (h_n, c_n))`` with x (T, B, I), (B, T, I) when batch_first, or unbatched (T, I);
    state (h_0, c_0) of shapes (L * D, B, P) and (L * D, B, H); lengths (B,) for a
    padded batch (outputs past a sequence's end are 0, its final state the one at its
    last step). It computes what the layer computes in eval mode: zoneout as its
    expectation p * old + (1 - p) * new; recurrent dropout, weight drop and dropout
    between layers are training-only and do nothing.

    The plain cell exports as ONNX's LSTM operator (see the module's docstring). Run
    eagerly, torch compiles the scan on the first call (seconds): it is made for export.
    """

    def __init__(self, lstm: LSTM) -> None:
        super().__init__()
        if lstm.training:
            raise ValueError("ExportableLSTM computes evaluation mode: call lstm.eval() first")
        self.lstm = lstm
        # at evaluation only these change the plain cell's equations, and ONNX's LSTM
        # operator has no projection
        self.as_onnx_lstm_op = not (lstm.peephole or lstm.layer_norm or any(lstm.zoneout)
                                    or lstm.proj_size)
        self.eval()

    def __getattr__(self, name: str) -> Any:
        """The layer's own attributes (sizes, options, parameters), as networks read them
        (a classifier asks its encoder for num_directions)."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "lstm":
                raise
            return getattr(self.lstm, name)

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None
                ) -> tuple[Tensor, State]:
        lstm = self.lstm
        if self.training:
            raise ValueError("ExportableLSTM computes evaluation mode: call .eval() first")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)  # (T, 1, I)
            state = None if state is None else (state[0].unsqueeze(1), state[1].unsqueeze(1))
        elif lstm.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        if state is None:
            LD, B = lstm.num_layers * lstm.num_directions, x.shape[1]
            state = (x.new_zeros(LD, B, lstm.proj_size or lstm.hidden_size),
                     x.new_zeros(LD, B, lstm.hidden_size))
        if lengths is not None:
            lengths = lengths.to(torch.long)
        if self.as_onnx_lstm_op and torch.onnx.is_in_onnx_export():
            output, final = self._onnx_lstm_op(x, state, lengths)
        else:
            output, final = self._scan(x, state, lengths)
        if unbatched:
            return output.squeeze(1), (final[0].squeeze(1), final[1].squeeze(1))
        if lstm.batch_first:
            output = output.transpose(0, 1)
        return output, final

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The layer's ``step``: x_t (B, I) -> (h_t of the top layer (B, P), state)."""
        output, final = self.forward(x_t.unsqueeze(1 if self.lstm.batch_first else 0), state)
        return (output[:, 0] if self.lstm.batch_first else output[0]), final

    def _scan(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        """x (T, B, I) -> output (T, B, D * P), (h_n, c_n): lstm_step under scan."""
        lstm = self.lstm
        weights = lstm.layer_weights()
        zoneout_c, zoneout_h = lstm.zoneout

        def run_direction(layer: int, direction: int, inputs: Tensor, hc: State) -> tuple:
            w = _scannable(weights[layer * lstm.num_directions + direction])
            x_terms = input_term(inputs, w)  # (T, B, 4H): W_x x_t + b for every t at once
            active = active_mask(lengths, x_terms.shape[0], x_terms)  # (T, B, 1) or None

            def step(carry: State, xs: tuple[Tensor, ...]) -> tuple[State, Tensor]:
                h_prev, c_prev = carry
                h, c, _ = lstm_step(xs[0], h_prev, c_prev, w, None, zoneout_c, zoneout_h)
                if active is None:
                    return (h, c), h.clone()  # scan's output may not alias its carry
                # past a sequence's end the state holds and the output is 0
                is_active = xs[1]  # (B, 1)
                return ((torch.where(is_active, h, h_prev), torch.where(is_active, c, c_prev)),
                        h * is_active)

            xs = (x_terms,) if active is None else (x_terms, active)
            final, outputs = scan(step, hc, xs)
            return outputs, final, None

        output, final, _ = run_stack(x, state, lengths, lstm.num_layers, lstm.num_directions,
                                     run_direction, lambda layer, out: out)
        return output, final

    def _onnx_lstm_op(self, x: Tensor, state: State, lengths: Tensor | None
                      ) -> tuple[Tensor, State]:
        """x (T, B, I) -> output (T, B, D * H), (h_n, c_n): one ONNX LSTM node per layer,
        which stops each sequence at its length like the layer does (export only)."""
        lstm = self.lstm
        T, B = x.shape[0], x.shape[1]
        D, H = lstm.num_directions, lstm.hidden_size
        weights = lstm.layer_weights()
        sequence_lengths = None if lengths is None else lengths.to(torch.int32)
        direction = "bidirectional" if D == 2 else "forward"
        h_n, c_n = [], []
        for layer in range(lstm.num_layers):
            directions = weights[layer * D:(layer + 1) * D]
            W = torch.stack([_onnx_gate_order(w.weight_ih, H) for w in directions])  # (D, 4H, I)
            R = torch.stack([_onnx_gate_order(w.weight_hh, H) for w in directions])  # (D, 4H, H)
            bias = None if not lstm.bias else torch.stack([
                torch.cat([_onnx_gate_order(w.bias_ih, H), _onnx_gate_order(w.bias_hh, H)])
                for w in directions])  # (D, 8H)
            rows = slice(layer * D, (layer + 1) * D)
            y, h, c = torch.onnx.ops.symbolic_multi_out(
                "::LSTM", [x, W, R, bias, sequence_lengths, state[0][rows], state[1][rows]],
                {"hidden_size": H, "direction": direction}, dtypes=[x.dtype] * 3,
                shapes=[(T, D, B, H), (D, B, H), (D, B, H)])
            x = y.permute(0, 2, 1, 3).reshape(T, B, D * H)  # (T, D, B, H) -> (T, B, D * H)
            h_n.append(h)
            c_n.append(c)
        return x, (torch.cat(h_n), torch.cat(c_n))

    def extra_repr(self) -> str:
        return "ONNX LSTM operator" if self.as_onnx_lstm_op else "scan over time"


def _onnx_gate_order(w: Tensor, H: int) -> Tensor:
    """Rows in torch's gate order i, f, g, o (4H, ...) -> ONNX's i, o, f, c."""
    i, f, g, o = w.split(H)
    return torch.cat([i, o, f, g])


def _scannable(w: LSTMWeights) -> LSTMWeights:
    """The weights as scan accepts them: the peephole parameter (3, H) becomes three
    separate rows, since scan refuses a tensor and its row views (lstm_step unpacks
    p_i, p_f, p_o from it) as inputs that alias each other."""
    if w.peephole is None:
        return w
    return w._replace(peephole=tuple(row.clone() for row in w.peephole))


def exportable(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in eval mode with every lstmkit.nn.LSTM in it replaced by an
    :class:`ExportableLSTM` of the same weights (``module`` itself is left as it was)."""
    module = copy.deepcopy(module).eval()
    if isinstance(module, LSTM):
        return ExportableLSTM(module)
    for parent in list(module.modules()):
        if isinstance(parent, ExportableLSTM):
            continue  # already exportable: its layer stays as it is
        for name, child in list(parent.named_children()):
            if isinstance(child, LSTM):
                setattr(parent, name, ExportableLSTM(child))
    return module
