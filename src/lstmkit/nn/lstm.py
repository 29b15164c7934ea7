"""The LSTM layer: torch.nn.LSTM's interface, every variant, a choice of kernels."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lstmkit.kernels import fused, native, reference, resolve_backend
from lstmkit.kernels.noise import LSTMNoise
from lstmkit.nn.cell import (
    as_zoneout_pair,
    check_probability,
    init_lstm_parameters,
    resolve_forget_bias,
    variant_repr,
    zoneout_weights,
)
from lstmkit.nn.recurrent import RecurrentLayer
from lstmkit.nn.regularisation import drop_connect, dropout_mask
from lstmkit.steps.lstm import LSTMWeights


class LSTM(RecurrentLayer):
    """Drop-in for torch.nn.LSTM, written from the gate equations (see lstmkit.steps.lstm).

    Same constructor (input_size, hidden_size, num_layers, bias, batch_first,
    dropout, bidirectional, proj_size), same parameter names, shapes and gate
    order, same call and outputs ``(output, (h_n, c_n))``, PackedSequence input.
    A plain configuration's state_dict loads both ways between the two.

    Variants (keyword-only, combinable, applied to every layer):

    - ``peephole=True``: diagonal peepholes (Gers & Schmidhuber 2000); adds
      ``weight_peephole_l{k}`` of shape (3, H), rows p_i, p_f, p_o.
    - ``layer_norm=True``: LayerNorm LSTM (Ba et al. 2016); adds gains
      ``layer_norm_ih_l{k}``, ``layer_norm_hh_l{k}`` (4H) and
      ``layer_norm_cell_weight_l{k}``, ``layer_norm_cell_bias_l{k}`` (H).
    - ``zoneout=p`` or ``(p_c, p_h)``: zoneout (Krueger et al. 2016); at
      evaluation each unit takes the expectation p * old + (1 - p) * new.
    - ``recurrent_dropout=p``: one dropout mask per sequence on h_{t-1} where it
      enters W_hh (Gal & Ghahramani 2016); training only.
    - ``weight_drop=p``: DropConnect on the hidden-to-hidden weights, one mask
      per forward call (Merity et al. 2017); training only.
    - ``forget_bias=b``: the initial forget-gate bias b_f. Default 1.0 when
      bias=True (Jozefowicz et al. 2015), unlike torch.nn.LSTM's uniform init.

    ``lengths=`` on the call takes a padded batch of unequal lengths (see
    RecurrentLayer.forward); ``step`` runs one time step for streaming use;
    ``lstmkit.nn.record_gates`` records f, i, g, o and c at every step.

    ``backend``: "auto" | "reference" | "fused" | "native" (see lstmkit.kernels);
    ``last_backend`` says which one ran.
    """

    gate_count = 4

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
        peephole: bool = False,
        layer_norm: bool = False,
        zoneout: float | tuple[float, float] = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        forget_bias: float | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, backend=backend)
        self.peephole = bool(peephole)
        self.layer_norm = bool(layer_norm)
        self.zoneout = as_zoneout_pair(zoneout)
        self.recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
        self.weight_drop = check_probability("weight_drop", weight_drop)
        self.forget_bias = resolve_forget_bias(forget_bias, bias)
        self._gate_recorder = None
        self._stream_cache: tuple[tuple, native.Stream] | None = None  # see step()
        H = hidden_size
        for name in self._names():
            if peephole:
                self.register_parameter("weight_peephole" + name, nn.Parameter(Tensor(3, H)))
            if layer_norm:
                self.register_parameter("layer_norm_ih" + name, nn.Parameter(Tensor(4 * H)))
                self.register_parameter("layer_norm_hh" + name, nn.Parameter(Tensor(4 * H)))
                self.register_parameter("layer_norm_cell_weight" + name, nn.Parameter(Tensor(H)))
                self.register_parameter("layer_norm_cell_bias" + name, nn.Parameter(Tensor(H)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_lstm_parameters(self.named_parameters(), self.hidden_size, self.forget_bias)

    def _state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        LD = self.num_layers * self.num_directions
        return [(LD, batch, self.proj_size or self.hidden_size), (LD, batch, self.hidden_size)]

    # --- which kernel ----------------------------------------------------------------------

    def variants_on(self) -> list[str]:
        """Names of the options that change the cell's equations (none: the plain LSTM)."""
        on = []
        if self.peephole:
            on.append("peephole")
        if self.layer_norm:
            on.append("layer_norm")
        if any(self.zoneout):
            on.append("zoneout")
        if self.recurrent_dropout:
            on.append("recurrent_dropout")
        return on

    def resolved_backend(self, x: Tensor | None = None, lengths: Tensor | None = None) -> str:
        """The backend a call on x (T, B, I) would run on now (raises if the requested one cannot).

        For the plain cell, auto picks native over fused where the benchmark measured it
        faster at x's shape (kernels/native/choice.py), and for every padded batch
        (``lengths``): torch's op then runs on a packed batch, which measured 6-9x slower
        than native (speech frames, T=233, B=17, 3 bidirectional layers of 128-192, forward
        and backward, 1-2 threads); without x, fused.
        """
        variants = self.variants_on()
        fused_blocker = (
            f"torch's fused LSTM has no {', '.join(variants)}" if variants else None
        )
        weight = self.weight_ih_l0

        def native_blocker() -> str | None:
            return native.config_blocker(weight.device, weight.dtype) or native.unavailable_reason()

        native_preferred = not variants and x is not None and (
            lengths is not None or native.native_preferred(x.shape, self.hidden_size, weight)
        )
        return resolve_backend(self.backend, fused_blocker, native_blocker, native_preferred)

    # --- weights and noise ------------------------------------------------------------------

    def layer_weights(self) -> list[LSTMWeights]:
        """LSTMWeights per layer and direction, with weight drop applied when training."""
        weights = []
        for name in self._names():
            p = {field: getattr(self, _PARAMETER_NAMES[field] + name, None)
                 for field in LSTMWeights._fields}
            if self.training and self.weight_drop:
                p["weight_hh"] = drop_connect(p["weight_hh"], self.weight_drop)
            weights.append(LSTMWeights(**p))
        return weights

    def draw_noise(self, T: int, B: int, like: Tensor) -> LSTMNoise:
        """Masks for one forward call: recurrent dropout, zoneout, between-layer dropout."""
        n = self.num_layers * self.num_directions
        H, P = self.hidden_size, self.proj_size or self.hidden_size
        training = self.training
        recurrent = [
            dropout_mask((B, P), self.recurrent_dropout, like) if training else None
            for _ in range(n)
        ]
        zoneout_c = [zoneout_weights(self.zoneout[0], (T, B, H), training, like) for _ in range(n)]
        zoneout_h = [zoneout_weights(self.zoneout[1], (T, B, P), training, like) for _ in range(n)]
        between = [
            dropout_mask((T, B, self.output_size), self.dropout, like) if training else None
            for _ in range(self.num_layers - 1)
        ]
        return LSTMNoise(recurrent, zoneout_c, zoneout_h, between)

    # --- the computation -------------------------------------------------------------------

    def _run(self, x: Tensor, state: tuple[Tensor, ...], lengths: Tensor | None):
        h0, c0 = state
        weights = self.layer_weights()
        if self._gate_recorder is not None:
            backend = "reference"
        else:
            backend = self.resolved_backend(x, lengths)
        if backend == "fused":
            output, h_n, c_n = fused.lstm(
                x, h0, c0, [list(w[:5]) for w in weights], self.bias, self.num_layers,
                self.bidirectional, self.dropout, self.training, lengths,
            )
        else:
            kernel = reference.lstm if backend == "reference" else native.lstm
            noise = self.draw_noise(x.shape[0], x.shape[1], x)
            output, h_n, c_n, records = kernel(
                x, h0, c0, weights, self.num_layers, self.bidirectional, noise, lengths,
                **({"record": True} if self._gate_recorder is not None else {}),
            )
            if self._gate_recorder is not None:
                self._gate_recorder.add(records, self.batch_first)
        self._ran(backend)
        return output, (h_n, c_n)

    def step(
        self, x_t: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One time step for streaming: x_t (B, I) -> (h_t of the top layer (B, P), state).

        Feeding a sequence one step at a time, passing the state along, gives the
        same outputs as feeding it whole (with the masks of training drawn anew
        each call, so use it in eval mode for exact agreement). For inference (eval
        mode, no gradient wanted) it runs the native one-step kernel on a copy of the
        weights made once and renewed when a weight changes; the state passed in is
        left as it was.
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional LSTM: a backward pass needs the future")
        if x_t.dim() != 2:
            raise ValueError(f"step() expects x_t of shape (batch, {self.input_size}), "
                             f"got {tuple(x_t.shape)}")
        x = x_t.unsqueeze(0)  # (1, B, I)
        self._check_features(x)
        state = self._initial_state(state, x, unbatched=False)
        parameters = tuple(self._parameters.values())  # the layer has no submodules
        wants_graph = torch.is_grad_enabled() and any(p.requires_grad for p in parameters)
        stream = None if self.training or wants_graph else self._native_stream(parameters)
        if stream is not None:
            # a plain attribute already: skip nn.Module's __setattr__, a tenth of a step
            self.__dict__["last_backend"] = "native"
            return stream(x_t, (state[0].clone(), state[1].clone()))
        output, final = self._run(x, state, None)
        return output[0], final

    def streaming_step(self) -> Callable[[Tensor, tuple[Tensor, Tensor] | None],
                                         tuple[Tensor, tuple[Tensor, Tensor]]]:
        """The fastest one-step function for inference, same contract as :meth:`step`.

        Where the native kernel runs, it is ``native.Stream`` over the weights as they are
        now (no autograd; the state advances in place, so pass copies of a state you still
        need); else the layer's own ``step``. For eval mode.
        """
        if self.bidirectional:
            raise ValueError("streaming needs a unidirectional LSTM: a backward pass needs "
                             "the future")
        stream = self._native_stream()
        return stream if stream is not None else self.step

    def _native_stream(self, parameters: tuple[Tensor, ...] | None = None
                       ) -> native.Stream | None:
        """The native one-step kernel over a copy of the current weights, where it runs
        (and no gates are being recorded); None elsewhere.

        The copy is made once and renewed when a parameter is replaced or changed in place
        (an optimiser step or load_state_dict bumps a tensor's version)."""
        if self._gate_recorder is not None:
            return None
        parameters = parameters or tuple(self._parameters.values())
        key = tuple((id(p), p._version) for p in parameters)
        if self._stream_cache is not None and self._stream_cache[0] == key:
            return self._stream_cache[1]
        weight = self.weight_ih_l0
        if (self.backend not in ("auto", "native")
                or native.config_blocker(weight.device, weight.dtype)
                or native.unavailable_reason()):
            return None
        self._stream_cache = (key, native.Stream(self.layer_weights(), self.zoneout))
        return self._stream_cache[1]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_stream_cache"] = None  # a compiled kernel's copy: made again when needed
        return state

    def extra_repr(self) -> str:
        s = super().extra_repr() + variant_repr(self.peephole, self.layer_norm, self.zoneout,
                                                 self.forget_bias)
        if self.recurrent_dropout:
            s += f", recurrent_dropout={self.recurrent_dropout}"
        if self.weight_drop:
            s += f", weight_drop={self.weight_drop}"
        return s


# LSTMWeights field -> parameter-name prefix (the suffix is _l{k} or _l{k}_reverse)
_PARAMETER_NAMES = {
    "weight_ih": "weight_ih",
    "weight_hh": "weight_hh",
    "bias_ih": "bias_ih",
    "bias_hh": "bias_hh",
    "weight_hr": "weight_hr",
    "peephole": "weight_peephole",
    "layer_norm_ih": "layer_norm_ih",
    "layer_norm_hh": "layer_norm_hh",
    "layer_norm_cell_weight": "layer_norm_cell_weight",
    "layer_norm_cell_bias": "layer_norm_cell_bias",
}
