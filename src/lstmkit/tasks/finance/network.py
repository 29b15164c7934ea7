"""The financial network: an LSTM over the last ``window`` days of features and the head
y = W h + b on its last state, one output per (origin, asset); and the loss per target.

    x (N, L, F) --LSTM--> h_L (N, P) --dropout--> y = W h_L + b + prior  (N,)

The prior is a causal baseline's forecast in the output's units, so the LSTM learns a
correction to it: for volatility the log of the EWMA variance (scaled as below); 0 for
the other targets.

What y means depends on the target (values in the training window's units):

    return         the h-day log return / its training-window std       squared error
    direction,     the log-odds of "up" (of beating the median asset)   cross-entropy
    cross_section
    volatility     log of the h-day variance / its training-window mean  QLIKE:
                                                                          y + RV e^-y
The QLIKE loss log v + RV / v is the Gaussian negative log-likelihood of the returns,
and the measure the forecasts are scored by, so the network learns what it is judged on.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lstmkit.nn import LSTM


class FinanceNet(nn.Module):
    """LSTM encoder + linear head over the last hidden state: (N, L, F) -> (N,)."""

    def __init__(self, num_features: int, hidden_size: int, num_layers: int, dropout: float,
                 lstm_options: dict) -> None:
        super().__init__()
        self.encoder = LSTM(num_features, hidden_size, num_layers, batch_first=True,
                            dropout=dropout, **lstm_options)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size, 1)
        # a zero head starts at the prior: the baseline's forecast, a zero return, p = 0.5
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor, prior: Tensor) -> Tensor:
        """x (N, L, F), prior (N,) -> y (N,)."""
        output, _ = self.encoder(x)
        h = output[:, -1]  # (N, P) the state after the window's last day
        return self.head(self.dropout(h)).squeeze(-1) + prior


def target_loss(kind: str, y: Tensor, target: Tensor) -> Tensor:
    """The training loss of outputs ``y`` (N,) against scaled targets (N,), by target kind."""
    if kind == "return":
        return nn.functional.mse_loss(y, target)
    if kind == "volatility":
        return (y + target * torch.exp(-y)).mean()
    return nn.functional.binary_cross_entropy_with_logits(y, (target > 0).to(y.dtype))


def forecast_value(kind: str, y: Tensor, scale: float) -> Tensor:
    """Outputs in the target's units: a return, a probability, or a variance."""
    if kind == "return":
        return y * scale
    if kind == "volatility":
        return torch.exp(y) * scale
    return torch.sigmoid(y)


class FinanceLoss:
    """loss_fn for the shared training loop: batches are (x, prior, target)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, model: FinanceNet, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        x, prior, target = batch
        return target_loss(self.kind, model(x, prior), target)
