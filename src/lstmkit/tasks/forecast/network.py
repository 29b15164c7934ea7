"""The forecasting network: an LSTM encoder and the output head y = W h + b.

    x (N, L, F) --[series embedding]--> LSTM --> h_L (N, D * P)
    y = W [h_L ; future features of the horizon] + b  (+ A x_target)  -> (N, H, Q)

The optional skip term A x_target is a linear autoregression on the window's
(normalised) target values, as in LSTNet (Lai et al. 2018): it carries trend and
seasonality straight through, so the LSTM learns what a linear model cannot.
Outputs are Q quantiles per horizon step; the median is the point forecast.

Training minimises :class:`ForecastLoss`, the pinball loss over observed targets.

"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lstmkit.nn import LSTM


class ForecastNet(nn.Module):
    """LSTM encoder + head over the last hidden state; `steps_out` forecasts per call."""

    def __init__(
        self,
        num_features: int,
        num_future_features: int,
        window: int,
        steps_out: int,
        num_quantiles: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        num_series: int,
        series_embedding: int,
        skip: bool,
        lstm_options: dict,
    ) -> None:
        super().__init__()
        self.steps_out, self.num_quantiles = steps_out, num_quantiles
        self.series_embedding = (
            nn.Embedding(num_series, series_embedding) if series_embedding else None
        )
        self.encoder = LSTM(num_features + series_embedding, hidden_size, num_layers,
                            batch_first=True, dropout=dropout, **lstm_options)
        head_inputs = self.encoder.output_size + steps_out * num_future_features
        self.head = nn.Linear(head_inputs, steps_out * num_quantiles)
        self.skip = nn.Linear(window, steps_out * num_quantiles) if skip else None

    def encoder_input(self, x: Tensor, series_id: Tensor) -> Tensor:
        """Features per step, with the series embedding appended: (N, L, F + E)."""
        if self.series_embedding is None:
            return x
        embedded = self.series_embedding(series_id)  # (N, E)
        return torch.cat([x, embedded.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)

    def forward(self, x: Tensor, future: Tensor, series_id: Tensor) -> Tensor:
        """x (N, L, F), future (N, steps_out, Ff), series_id (N,) -> (N, steps_out, Q)."""
        output, _ = self.encoder(self.encoder_input(x, series_id))
        h = output[:, -1]  # (N, D * P) the state after the last input step
        features = torch.cat([h, future.flatten(1)], dim=-1)  # (N, D * P + steps_out * Ff)
        y = self.head(features)
        if self.skip is not None:
            y = y + self.skip(x[:, :, 0])
        return y.view(-1, self.steps_out, self.num_quantiles)


def pinball_loss(prediction: Tensor, target: Tensor, mask: Tensor, quantiles: Tensor) -> Tensor:
    """Quantile (pinball) loss, the mean over windows of each window's mean over its
    H x Q slots, where unobserved targets add 0.

    A mean per window (rather than per observed target) is what the training loop's
    data parallelism needs: each process's share of a batch then weighs by its windows,
    and N processes train the model one process trains.

    prediction (N, H, Q), target (N, H), mask (N, H) bool, quantiles (Q,).
    """
    error = target.unsqueeze(-1) - prediction  # (N, H, Q)
    loss = torch.maximum(quantiles * error, (quantiles - 1) * error)
    weight = mask.unsqueeze(-1).to(loss.dtype)
    return (loss * weight).sum() / loss.numel()


class ForecastLoss:
    """loss_fn for the training engine: pinball loss over observed targets."""

    def __init__(self, quantiles: list[float]) -> None:
        self.quantiles = torch.tensor(quantiles)

    def __call__(self, model: ForecastNet, batch: tuple) -> torch.Tensor:
        x, future, y, y_mask, series_id = batch[:5]
        prediction = model(x, future, series_id)
        return pinball_loss(prediction, y, y_mask, self.quantiles.to(prediction))
