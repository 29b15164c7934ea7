"""The reference kernel: the readable step-by-step loop, differentiated by autograd.

Every other kernel is tested against this one, and this one against torch.nn.LSTM.
A layer of D directions and L layers is composition: `scan` runs one cell over
time, `run_stack` runs the scans of every layer and direction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lstmkit.kernels.noise import LSTMNoise
from lstmkit.kernels.sequence import active_mask, reverse_padded
from lstmkit.steps.gru import gru_step
from lstmkit.steps.lstm import Gates, LSTMWeights, input_term, lstm_step
from lstmkit.steps.rnn import rnn_step

# step(s, x_term_s, state) -> (output_s, new_state, record_s); state is a tuple of (B, .) tensors
Step = Callable[[int, Tensor, tuple[Tensor, ...]], tuple[Tensor, tuple[Tensor, ...], object]]


def scan(
    step: Step, x_terms: Tensor, state: tuple[Tensor, ...], lengths: Tensor | None
) -> tuple[Tensor, tuple[Tensor, ...], list]:
    """Run step over x_terms (T, B, G); past a sequence's end the state holds and output is 0."""
    active = active_mask(lengths, x_terms.shape[0], x_terms)
    outputs, records = [], []
    for s in range(x_terms.shape[0]):
        output, new_state, record = step(s, x_terms[s], state)
        if active is not None:
            output = output * active[s]
            new_state = tuple(torch.where(active[s], n, o) for n, o in zip(new_state, state))
        state = new_state
        outputs.append(output)
        records.append(record)
    return torch.stack(outputs), state, records


RunDirection = Callable[[int, int, Tensor, tuple[Tensor, ...]], tuple[Tensor, tuple, list]]


def run_stack(
    x: Tensor,
    initial_state: tuple[Tensor, ...],
    lengths: Tensor | None,
    num_layers: int,
    num_directions: int,
    run_direction: RunDirection,
    between_layers: Callable[[int, Tensor], Tensor],
) -> tuple[Tensor, tuple[Tensor, ...], list]:
    """Every layer and direction: x (T, B, I) -> output (T, B, D * H_out), final states.

    initial_state holds tensors of shape (L * D, B, .), as torch lays them out;
    run_direction(layer, direction, x, state) scans one direction forward in time.
    """
    finals: list[tuple[Tensor, ...]] = []
    records = []
    layer_input = x
    for layer in range(num_layers):
        outputs = []
        for direction in range(num_directions):
            index = layer * num_directions + direction
            state = tuple(s[index] for s in initial_state)
            if direction == 0:
                out, final, rec = run_direction(layer, direction, layer_input, state)
            else:
                reversed_input = reverse_padded(layer_input, lengths)
                out, final, rec = run_direction(layer, direction, reversed_input, state)
                out = reverse_padded(out, lengths)
            outputs.append(out)
            finals.append(final)
            records.append(rec)
        layer_input = torch.cat(outputs, dim=-1) if num_directions == 2 else outputs[0]
        if layer < num_layers - 1:
            layer_input = between_layers(layer, layer_input)
    final_state = tuple(torch.stack(parts) for parts in zip(*finals))
    return layer_input, final_state, records


def lstm(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: Sequence[LSTMWeights],
    num_layers: int,
    bidirectional: bool,
    noise: LSTMNoise,
    lengths: Tensor | None = None,
    record: bool = False,
) -> tuple[Tensor, Tensor, Tensor, list[dict[str, Tensor]] | None]:
    """A stacked LSTM over x (T, B, I) from (h0, c0) (L * D, B, P | H).

    Returns output (T, B, D * P), h_n, c_n and, when record is set, one dict of
    (T, B, H) tensors i, f, g, o, c per layer and direction (time in input order).
    """
    D = 2 if bidirectional else 1

    def run_direction(layer: int, direction: int, inputs: Tensor, state: tuple) -> tuple:
        index = layer * D + direction
        w = weights[index]
        x_terms = input_term(inputs, w)  # (T, B, 4H): W_x x_t + b for every t at once
        zc, zh = noise.zoneout_c[index], noise.zoneout_h[index]

        def step(s: int, x_term: Tensor, hc: tuple) -> tuple:
            h, c, gates = lstm_step(
                x_term,
                hc[0],
                hc[1],
                w,
                noise.recurrent[index],
                zc[s] if isinstance(zc, Tensor) else zc,
                zh[s] if isinstance(zh, Tensor) else zh,
            )
            return h, (h, c), (gates, c) if record else None

        return scan(step, x_terms, state, lengths)

    def between_layers(layer: int, out: Tensor) -> Tensor:
        mask = noise.between_layers[layer]
        return out if mask is None else out * mask

    output, (h_n, c_n), records = run_stack(
        x, (h0, c0), lengths, num_layers, D, run_direction, between_layers
    )
    return output, h_n, c_n, _gate_records(records, D, lengths) if record else None


def _gate_records(records: list, num_directions: int, lengths: Tensor | None) -> list[dict]:
    traces = []
    for index, steps in enumerate(records):
        trace = {
            name: torch.stack([getattr(gates, name) for gates, _ in steps]).detach()
            for name in Gates._fields
        }
        trace["c"] = torch.stack([c for _, c in steps]).detach()
        if index % num_directions == 1:
            trace = {name: reverse_padded(t, lengths) for name, t in trace.items()}
        traces.append(trace)
    return traces


def gru(
    x: Tensor,
    h0: Tensor,
    weights: Sequence[tuple[Tensor, ...]],
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    training: bool,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Stacked GRU, torch.nn.GRU's equations; per layer-direction (w_ih, w_hh, b_ih, b_hh)."""
    return _simple_stack(gru_step, x, h0, weights, num_layers, bidirectional, dropout, training,
                         lengths)


def rnn(
    x: Tensor,
    h0: Tensor,
    weights: Sequence[tuple[Tensor, ...]],
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    training: bool,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Stacked plain tanh RNN, torch.nn.RNN's equations."""
    return _simple_stack(rnn_step, x, h0, weights, num_layers, bidirectional, dropout, training,
                         lengths)


def _simple_stack(cell_step, x, h0, weights, num_layers, bidirectional, dropout, training, lengths):
    """GRU and RNN: one state tensor h; cell_step(W_ih x_t + b_ih, h, W_hh, b_hh) -> h_t."""
    D = 2 if bidirectional else 1

    def run_direction(layer: int, direction: int, inputs: Tensor, state: tuple) -> tuple:
        w_ih, w_hh, b_ih, b_hh = weights[layer * D + direction]
        x_terms = torch.nn.functional.linear(inputs, w_ih, b_ih)  # (T, B, G * H)

        def step(s: int, x_term: Tensor, hs: tuple) -> tuple:
            h = cell_step(x_term, hs[0], w_hh, b_hh)
            return h, (h,), None

        return scan(step, x_terms, state, lengths)

    def between_layers(layer: int, out: Tensor) -> Tensor:
        return torch.nn.functional.dropout(out, dropout, training)

    output, (h_n,), _ = run_stack(x, (h0,), lengths, num_layers, D, run_direction, between_layers)
    return output, h_n
