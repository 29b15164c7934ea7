"""What every recurrent layer shares: torch.nn.LSTM's constructor and call.

The batch layout (batch_first, unbatched input), PackedSequence input, padded
batches with ``lengths=``, initial states and their checks live here, once.
Subclasses create their parameters and implement ``_run`` on time-major input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit.kernels import check_backend_name, log
from lstmkit.nn.cell import check_probability, check_size


class RecurrentLayer(nn.Module):
    """Base of LSTM, GRU and RNN. ``gate_count`` is 4 for the LSTM, 3 for the GRU, 1 for the RNN."""

    gate_count = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        check_size("proj_size", proj_size, minimum=0)
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}"
            )
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = check_probability("dropout", dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = proj_size
        self.backend = check_backend_name(backend)
        self.last_backend: str | None = None

        G, H = self.gate_count, hidden_size
        out = proj_size or hidden_size
        for layer in range(num_layers):
            for suffix in self._direction_suffixes():
                layer_input = input_size if layer == 0 else out * self.num_directions
                shapes = {"weight_ih": (G * H, layer_input), "weight_hh": (G * H, out)}
                if bias:
                    shapes |= {"bias_ih": (G * H,), "bias_hh": (G * H,)}
                if proj_size:
                    shapes["weight_hr"] = (proj_size, H)
                for prefix, shape in shapes.items():
                    parameter = nn.Parameter(torch.empty(shape))
                    self.register_parameter(f"{prefix}_l{layer}{suffix}", parameter)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features per step of the output: D * (proj_size or hidden_size)."""
        return self.num_directions * (self.proj_size or self.hidden_size)

    def _direction_suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _names(self) -> list[str]:
        """Parameter-name suffixes per layer and direction, torch's order: _l0, _l0_reverse, ..."""
        return [f"_l{k}{s}" for k in range(self.num_layers) for s in self._direction_suffixes()]

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        """Shapes of the initial-state tensors for a batch: [(L * D, B, H_out)] for GRU and RNN."""
        return [(self.num_layers * self.num_directions, batch, self.proj_size or self.hidden_size)]

    # --- the call -------------------------------------------------------------------------

    def forward(self, input, hx=None, lengths: Tensor | None = None):
        """torch's call: (output, h_n) or for the LSTM (output, (h_n, c_n)).

        ``lengths`` (1-D, one per sequence) marks a padded batch: outputs past a
        sequence's end are zero and its final state is the state at its own last step.
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("pass lengths= or a PackedSequence, not both")
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__} expects input of rank 3 (batched) or 2 (unbatched), "
                f"got shape {tuple(input.shape)}"
            )
        unbatched = input.dim() == 2
        if unbatched:
            x = input.unsqueeze(1)  # (T, 1, I)
            if lengths is not None:
                raise ValueError("lengths= needs a batched input of rank 3")
        else:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        self._check_features(x)
        lengths = self._check_lengths(lengths, x)
        state = self._initial_state(hx, x, unbatched)
        output, final = self._run(x, state, lengths)
        if unbatched:
            return output.squeeze(1), self._unbatch_state(final)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, self._pack_state(final)

    def _forward_packed(self, packed: PackedSequence, hx):
        x, lengths = pad_packed_sequence(packed)  # (T, B, I), in the caller's batch order
        self._check_features(x)
        state = self._initial_state(hx, x, unbatched=False)
        output, final = self._run(x, state, lengths)
        order = packed.sorted_indices
        if order is not None:
            output, lengths = output.index_select(1, order), lengths[order.cpu()]
        data, batch_sizes, _, _ = pack_padded_sequence(output, lengths)
        out = PackedSequence(data, batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        return out, self._pack_state(final)

    def _check_features(self, x: Tensor) -> None:
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {x.shape[-1]} features per step but the layer was built with "
                f"input_size={self.input_size}"
            )
        if x.shape[0] == 0:
            raise ValueError("input has no time steps")

    def _check_lengths(self, lengths: Tensor | None, x: Tensor) -> Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        T, B = x.shape[0], x.shape[1]
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(
                f"lengths must be a 1-D tensor with one length per sequence ({B}), "
                f"got shape {tuple(lengths.shape)}"
            )
        if lengths.is_floating_point():
            raise ValueError("lengths must hold integers")
        if int(lengths.max()) > T:
            raise ValueError(
                f"a length ({int(lengths.max())}) is longer than the sequence ({T} steps)"
            )
        if int(lengths.min()) < 1:
            raise ValueError("every length must be at least 1: a sequence cannot be empty")
        return lengths.to(device=x.device, dtype=torch.long)

    def _initial_state(self, hx, x: Tensor, unbatched: bool) -> tuple[Tensor, ...]:
        shapes = self._state_shapes(x.shape[1])
        if hx is None:
            return tuple(x.new_zeros(shape) for shape in shapes)
        parts = (hx,) if isinstance(hx, Tensor) else tuple(hx)
        if len(parts) != len(shapes):
            raise ValueError(f"{type(self).__name__} expects {len(shapes)} initial-state tensors")
        if unbatched:
            parts = tuple(p.unsqueeze(1) for p in parts)
        for p, shape in zip(parts, shapes):
            if tuple(p.shape) != shape:
                raise ValueError(
                    f"initial state has shape {tuple(p.shape)}, expected {shape} "
                    "(layers * directions, batch, size)"
                )
        return parts

    def _pack_state(self, final: tuple[Tensor, ...]):
        return final[0] if len(final) == 1 else final

    def _unbatch_state(self, final: tuple[Tensor, ...]):
        return self._pack_state(tuple(s.squeeze(1) for s in final))

    def _ran(self, backend: str) -> None:
        self.last_backend = backend
        log.debug("%s ran on the %s backend", type(self).__name__, backend)

    def _run(
        self, x: Tensor, state: tuple[Tensor, ...], lengths: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0), ("backend", "auto")):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s
