"""lstmkit's compiled LSTM kernel: every variant of the layer, forward and backward in C++.

- ``lstm`` has the reference kernel's signature (less ``record``) and the same
  results, values and gradients;
- ``unavailable_reason`` says why the kernel cannot run here (None when it can),
  building it on first use; ``config_blocker`` says why it cannot run a given
  device or dtype; ``native_preferred`` whether auto runs the plain cell here;
- ``Stream`` runs one step at a time for low-latency inference.

In eager mode the C++ forward and backward sit in a torch.autograd.Function; under
torch.compile the same two calls are the custom ops ``lstmkit::native_lstm`` and
``lstmkit::native_lstm_backward``, with fake-tensor rules, so the graph does not break
(eager does not use them: the custom-op dispatch costs about 0.2 ms a call here).
The interface of the C++ code, the algorithm and the build: README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import torch
from torch import Tensor

from lstmkit.kernels.native.build import NativeBuildError, compile_extension
from lstmkit.kernels.native.choice import native_preferred
from lstmkit.kernels.noise import LSTMNoise
from lstmkit.steps.lstm import LSTMWeights

__all__ = ["Stream", "config_blocker", "lstm", "native_preferred", "unavailable_reason"]

DTYPES = (torch.float32, torch.float64)

# The compiled module, or the reason it could not be built; None until the first use.
_build_result: ModuleType | str | None = None


def _extension() -> ModuleType:
    global _build_result
    if _build_result is None:
        try:
            _build_result = compile_extension()
        except NativeBuildError as error:
            _build_result = str(error)
    if isinstance(_build_result, str):
        raise RuntimeError(_build_result)
    return _build_result


def unavailable_reason() -> str | None:
    """Why the kernel cannot run on this machine (None when it can). Builds it on first call."""
    try:
        _extension()
    except RuntimeError as error:
        return str(error)
    return None


def config_blocker(device: torch.device, dtype: torch.dtype) -> str | None:
    """Why the kernel cannot run tensors of this device and dtype (None when it can)."""
    if device.type != "cpu":
        return f"the native kernel runs on the CPU only (the layer is on {device.type})"
    if dtype not in DTYPES:
        return f"the native kernel computes in float32 and float64 only (the layer is {dtype})"
    return None


# --- arguments of the C++ calls ------------------------------------------------------------


def _flat_weights(weights: Sequence[LSTMWeights]) -> list[Tensor | None]:
    """Every layer-direction's LSTMWeights fields in order, None where a variant is off."""
    return [w for layer_direction in weights for w in layer_direction]


def _noise_arguments(noise: LSTMNoise) -> tuple[list, list, list, list[float], list[float], list]:
    """LSTMNoise as the C++ reads it: zoneout split into masks and, where none, the weight p."""

    def split(zoneout: Sequence[Tensor | float]) -> tuple[list, list[float]]:
        masks = [z if isinstance(z, Tensor) else None for z in zoneout]
        expected = [0.0 if isinstance(z, Tensor) else float(z) for z in zoneout]
        return masks, expected

    masks_c, expected_c = split(noise.zoneout_c)
    masks_h, expected_h = split(noise.zoneout_h)
    return (list(noise.recurrent), masks_c, masks_h, expected_c, expected_h,
            list(noise.between_layers))


def _weight_grads(grads: Sequence[Tensor], weights: Sequence[Tensor | None]) -> list:
    """The C++ returns an empty tensor for an absent weight; autograd wants None."""
    return [g if w is not None else None for g, w in zip(grads, weights)]


# --- eager: an autograd.Function ---------------------------------------------------------


class _NativeLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, num_layers, bidirectional, lengths, noise_args, save_for_backward,
                *weights):
        output, h_n, c_n, workspace = _extension().forward(
            x, h0, c0, list(weights), num_layers, bidirectional, lengths, *noise_args,
            save_for_backward,
        )
        ctx.save_for_backward(x, workspace, *weights)
        ctx.settings = (num_layers, bidirectional, lengths, noise_args)
        return output, h_n, c_n

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, grad_h_n, grad_c_n):
        x, workspace, *weights = ctx.saved_tensors
        num_layers, bidirectional, lengths, noise_args = ctx.settings
        dx, dh0, dc0, *dweights = _extension().backward(
            grad_output, grad_h_n, grad_c_n, x, weights, num_layers, bidirectional, lengths,
            *noise_args, workspace,
        )
        return dx, dh0, dc0, None, None, None, None, None, *_weight_grads(dweights, weights)


# --- torch.compile: custom ops with fake-tensor and autograd rules ----------------------


# Their weights are the present ones only, with ``fields`` (LSTMWeights order, the same
# for every layer and direction) saying which: torch.library hands gradients to a list of
# tensors, but not to a list with None in it.


def _present(weights: Sequence[Tensor | None]) -> tuple[list[Tensor], list[bool]]:
    fields = [w is not None for w in weights[: len(LSTMWeights._fields)]]
    return [w for w in weights if w is not None], fields


def _with_absent(weights: Sequence[Tensor], fields: Sequence[bool]) -> list[Tensor | None]:
    present = iter(weights)
    layer_directions = len(weights) // sum(fields)
    return [next(present) if on else None for _ in range(layer_directions) for on in fields]


@torch.library.custom_op("lstmkit::native_lstm", mutates_args=())
def _lstm_op(
    x: Tensor, h0: Tensor, c0: Tensor, weights: list[Tensor], fields: list[bool],
    num_layers: int, bidirectional: bool, lengths: Tensor | None,
    recurrent: list[Tensor | None], zoneout_c: list[Tensor | None],
    zoneout_h: list[Tensor | None], zoneout_c_expected: list[float],
    zoneout_h_expected: list[float], between_layers: list[Tensor | None],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    output, h_n, c_n, workspace = _extension().forward(
        x, h0, c0, _with_absent(weights, fields), num_layers, bidirectional, lengths, recurrent,
        zoneout_c, zoneout_h, zoneout_c_expected, zoneout_h_expected, between_layers, True,
    )
    return output, h_n, c_n, workspace


def workspace_numel(T, B, H: int, P: int, num_layers: int, num_directions: int,
                    layer_norm: bool):
    """Elements of the forward's workspace (workspace.cpp: carve() lays it out; opcheck checks)."""
    per_row = 4 * H + H + H + P  # gates, c_prev, tanh_c, h_in
    if layer_norm:
        per_row += 4 * H + 1 + 4 * H + 1 + H + 1  # ih_hat, ih_rstd, hh_hat, hh_rstd, c_hat, c_rstd
    layer_inputs = (num_layers - 1) * num_directions * P
    return T * B * (num_layers * num_directions * per_row + layer_inputs)


@_lstm_op.register_fake
def _(x, h0, c0, weights, fields, num_layers, bidirectional, *rest):
    T, B = x.shape[0], x.shape[1]
    H, P = weights[1].shape[0] // 4, weights[1].shape[1]  # from W_hh (4H, P)
    D = 2 if bidirectional else 1
    layer_norm = fields[LSTMWeights._fields.index("layer_norm_ih")]
    size = workspace_numel(T, B, H, P, num_layers, D, layer_norm)
    return (x.new_empty(T, B, D * P), h0.new_empty(h0.shape), c0.new_empty(c0.shape),
            x.new_empty(size))


@torch.library.custom_op("lstmkit::native_lstm_backward", mutates_args=())
def _lstm_backward_op(
    grad_output: Tensor, grad_h_n: Tensor, grad_c_n: Tensor, x: Tensor, weights: list[Tensor],
    fields: list[bool], num_layers: int, bidirectional: bool, lengths: Tensor | None,
    recurrent: list[Tensor | None], zoneout_c: list[Tensor | None],
    zoneout_h: list[Tensor | None], zoneout_c_expected: list[float],
    zoneout_h_expected: list[float], between_layers: list[Tensor | None], workspace: Tensor,
) -> list[Tensor]:
    """dx, dh0, dc0, then the gradients of the weights given."""
    dx, dh0, dc0, *dweights = _extension().backward(
        grad_output, grad_h_n, grad_c_n, x, _with_absent(weights, fields), num_layers,
        bidirectional, lengths, recurrent, zoneout_c, zoneout_h, zoneout_c_expected,
        zoneout_h_expected, between_layers, workspace,
    )
    on = fields * (len(dweights) // len(fields))
    return [dx, dh0, dc0, *(grad for grad, present in zip(dweights, on) if present)]


@_lstm_backward_op.register_fake
def _(grad_output, grad_h_n, grad_c_n, x, weights, *rest):
    return [x.new_empty(x.shape), grad_h_n.new_empty(grad_h_n.shape),
            grad_c_n.new_empty(grad_c_n.shape), *(w.new_empty(w.shape) for w in weights)]


def _setup_context(ctx, inputs, output):
    x, h0, c0, weights, *settings = inputs
    ctx.save_for_backward(x, output[3], *weights)
    ctx.settings = settings


def _backward(ctx, grad_output, grad_h_n, grad_c_n, grad_workspace):
    x, workspace, *weights = ctx.saved_tensors
    dx, dh0, dc0, *dweights = _lstm_backward_op(
        grad_output, grad_h_n, grad_c_n, x, weights, *ctx.settings, workspace
    )
    # nothing for the masks and settings, in the structure torch.library flattens them to:
    # a list of None for a list of tensors, one None for anything else
    no_grads = [
        [None] * len(a) if isinstance(a, list) and all(isinstance(t, Tensor) for t in a)
        else None
        for a in ctx.settings
    ]
    return (dx, dh0, dc0, dweights, *no_grads)


_lstm_op.register_autograd(_backward, setup_context=_setup_context)


# --- the kernel --------------------------------------------------------------------------


def lstm(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: Sequence[LSTMWeights],
    num_layers: int,
    bidirectional: bool,
    noise: LSTMNoise,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, None]:
    """A stacked LSTM over x (T, B, I) from (h0, c0) (L * D, B, P | H); see reference.lstm.

    Returns output (T, B, D * P), h_n, c_n, and None where the reference returns records.
    """
    flat = _flat_weights(weights)
    noise_args = _noise_arguments(noise)
    if lengths is not None:
        lengths = lengths.to(device="cpu", dtype=torch.long)
    if torch.compiler.is_compiling():
        output, h_n, c_n, _ = _lstm_op(x, h0, c0, *_present(flat), num_layers, bidirectional,
                                       lengths, *noise_args)
    else:
        # without a backward to come the kernel keeps one step of its buffers, not all T
        save_for_backward = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, h0, c0, *flat)
        )
        output, h_n, c_n = _NativeLSTM.apply(x, h0, c0, num_layers, bidirectional, lengths,
                                             noise_args, save_for_backward, *flat)
    return output, h_n, c_n, None


class Stream:
    """One step at a time through a unidirectional stack, for inference: no autograd.

    The weights are copied once, when the Stream is made, so a step is a single call
    into C++ with nothing allocated but its output:

        step = Stream(lstm.layer_weights(), lstm.zoneout)   # lstm in eval mode
        state = None
        for x_t in stream:                                  # x_t (B, I)
            y_t, state = step(x_t, state)                   # y_t (B, P)

    The state (h (L, B, P), c (L, B, H)) advances in place: the tensors passed in are
    the ones returned. ``zoneout`` is the layer's (p_c, p_h), applied as at evaluation:
    each unit takes p * old + (1 - p) * new.
    """

    def __init__(self, weights: Sequence[LSTMWeights],
                 zoneout: tuple[float, float] = (0.0, 0.0)) -> None:
        self.num_layers = len(weights)
        self.hidden_size = weights[0].weight_hh.shape[0] // 4
        self.output_size = weights[0].weight_hh.shape[1]
        snapshot = [None if w is None else w.detach().clone() for w in _flat_weights(weights)]
        L = self.num_layers
        self._step = _extension().StreamingStep(
            snapshot, L, [float(zoneout[0])] * L, [float(zoneout[1])] * L
        ).step

    def __call__(
        self, x_t: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x_t (B, I) -> (h_t of the top layer (B, P), state advanced in place)."""
        if state is None:
            B = x_t.shape[0]
            state = (x_t.new_zeros(self.num_layers, B, self.output_size),
                     x_t.new_zeros(self.num_layers, B, self.hidden_size))
        return self._step(x_t, state[0], state[1]), state
