"""The models at equal parameter budget: a recurrent encoder (LSTM and its variants, GRU,
plain RNN) and the head y = W h + b, its hidden size chosen to fit the plain LSTM's
parameter count."""

from __future__ import annotations

from torch import Tensor, nn

from lstmkit.nn import GRU, LSTM, RNN
from lstmkit.tasks.long_range.config import ExperimentConfig
from lstmkit.tasks.long_range.specs import TaskSpec


def recurrent_parameter_count(model: str, variant: str, input_size: int, hidden: int) -> int:
    """Parameters of a one-layer encoder: gates x (input and recurrent weights, two biases)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[model]
    count = gates * hidden * (input_size + hidden + 2)
    if variant == "peephole":
        count += 3 * hidden  # p_i, p_f, p_o
    elif variant == "layer_norm":
        count += 2 * 4 * hidden + 2 * hidden  # gains on both gate sums, cell gain and bias
    return count


def parameter_count(model: str, variant: str, input_size: int, hidden: int,
                    output_size: int) -> int:
    """Parameters of encoder plus head y = W h + b."""
    head = hidden * output_size + output_size
    return recurrent_parameter_count(model, variant, input_size, hidden) + head


def hidden_for_budget(model: str, variant: str, input_size: int, output_size: int,
                      budget: int) -> int:
    """The largest hidden size whose model has at most ``budget`` parameters."""
    hidden = 1
    while parameter_count(model, variant, input_size, hidden + 1, output_size) <= budget:
        hidden += 1
    return hidden


def build_encoder(model: str, variant: str, input_size: int, hidden: int) -> nn.Module:
    """A one-layer batch-first recurrent layer; plain configurations run on torch's fused op."""
    if model == "gru":
        return GRU(input_size, hidden, batch_first=True)
    if model == "rnn":
        return RNN(input_size, hidden, batch_first=True)
    options = {
        "plain": {},
        "forget0": {"forget_bias": 0.0},
        "layer_norm": {"layer_norm": True},
        "peephole": {"peephole": True},
    }[variant]
    return LSTM(input_size, hidden, batch_first=True, **options)


class SequenceModel(nn.Module):
    """Recurrent encoder and output head y = W h + b, at the last step or at every step."""

    def __init__(self, encoder: nn.Module, output_size: int, every_step: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.hidden_size, output_size)
        self.every_step = every_step

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, I) -> (B, T, O) when every_step, else (B, O)."""
        h, _ = self.encoder(x)  # (B, T, H)
        return self.head(h if self.every_step else h[:, -1])


def build_model(config: ExperimentConfig, spec: TaskSpec) -> SequenceModel:
    """The configured model, its hidden size chosen to fit the plain LSTM's parameter budget."""
    budget = parameter_count("lstm", "plain", spec.input_size, config.hidden, spec.output_size)
    hidden = hidden_for_budget(config.model, config.variant, spec.input_size, spec.output_size,
                               budget)
    encoder = build_encoder(config.model, config.variant, spec.input_size, hidden)
    return SequenceModel(encoder, spec.output_size, spec.every_step)
