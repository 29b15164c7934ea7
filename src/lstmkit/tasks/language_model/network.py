"""The AWD-LSTM network, its regularisers (embedding, locked and weight dropout) and the
loss that carries the state from batch to batch (see the package's docstring)."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.nn import LSTM
from lstmkit.nn.regularisation import dropout_mask
from lstmkit.tasks.language_model.config import LanguageModelConfig

State = list[tuple[Tensor, Tensor]]
"""Per LSTM layer (h, c), each (1, B, size): what one batch hands to the next."""


class LMOutput(NamedTuple):
    logits: Tensor  # (B, T, V)
    state: State
    hidden: Tensor  # (B, T, P) top layer's output (TAR acts on it)
    dropped: Tensor  # (B, T, P) the same after output dropout (AR acts on it)


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout (Gal & Ghahramani 2016): x (B, T, F), one mask per sequence."""
    if not training or p == 0.0:
        return x
    return x * dropout_mask((x.shape[0], 1, x.shape[2]), p, x)


def embed_with_dropout(embedding: nn.Embedding, tokens: Tensor, p: float,
                       training: bool) -> Tensor:
    """Embedding dropout: a dropped word loses its whole vector wherever it occurs."""
    weight = embedding.weight
    if training and p:
        weight = weight * dropout_mask((weight.shape[0], 1), p, weight)
    return F.embedding(tokens, weight)


class LanguageModelNet(nn.Module):
    """Embedding, stacked lstmkit.nn.LSTM layers, (projection), tied output layer.

    Each layer is its own one-layer LSTM so that locked dropout can act between
    layers; :meth:`stacked_lstm` returns them as one multi-layer LSTM.
    """

    def __init__(self, vocab_size: int, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        E, H, P = config.embedding_dim, config.hidden_size, config.proj_size
        output_size = P or H
        self.embedding = nn.Embedding(vocab_size, E)
        self.layers = nn.ModuleList(
            LSTM(E if k == 0 else output_size, H, proj_size=P, batch_first=True,
                 weight_drop=config.weight_drop)
            for k in range(config.num_layers)
        )
        tied = config.tie_weights
        self.projection = (nn.Linear(output_size, E) if tied and output_size != E
                           else nn.Identity())
        self.decoder = nn.Linear(E if tied else output_size, vocab_size)
        # the embedding keeps nn.Embedding's N(0, 1): AWD-LSTM's uniform(-0.1, 0.1) makes
        # the inputs (and tied logits) so small that early training crawls (stdlib chars,
        # 150 AdamW steps: 4.46 bits per character against 3.06)
        nn.init.zeros_(self.decoder.bias)
        if tied:
            self.decoder.weight = self.embedding.weight

    def forward(self, tokens: Tensor, state: State | None = None) -> LMOutput:
        """tokens (B, T) -> next-token logits (B, T, V) and the final state."""
        c = self.config
        x = embed_with_dropout(self.embedding, tokens, c.embedding_dropout, self.training)
        x = locked_dropout(x, c.input_dropout, self.training)  # (B, T, E)
        final: State = []
        for k, layer in enumerate(self.layers):
            x, layer_state = layer(x, None if state is None else state[k])
            final.append(layer_state)
            if k < len(self.layers) - 1:
                x = locked_dropout(x, c.hidden_dropout, self.training)
        dropped = locked_dropout(x, c.output_dropout, self.training)
        return LMOutput(self.decoder(self.projection(dropped)), final, x, dropped)

    def stacked_lstm(self) -> LSTM:
        """The layers as one multi-layer lstmkit.nn.LSTM (batch_first), same weights."""
        c = self.config
        lstm = LSTM(c.embedding_dim, c.hidden_size, num_layers=c.num_layers,
                    proj_size=c.proj_size, batch_first=True, dropout=c.hidden_dropout,
                    weight_drop=c.weight_drop)
        weights = {}
        for k, layer in enumerate(self.layers):
            for name, tensor in layer.state_dict().items():
                weights[name.replace("_l0", f"_l{k}")] = tensor  # weight_ih_l0 -> weight_ih_lk
        lstm.load_state_dict(weights)
        return lstm


def detach_state(state: State) -> State:
    """The state without its history: gradients stop at the batch boundary."""
    return [(h.detach(), c.detach()) for h, c in state]


class StreamLoss:
    """Next-token cross entropy with the state carried from batch to batch (TBPTT).

    Training and validation streams keep separate states, reset by the training loop
    at each epoch's start and before each validation. In training mode AR and TAR are
    added; in evaluation mode the loss is the plain cross entropy in nats per token.
    """

    def __init__(self, activation_regularisation: float = 0.0,
                 temporal_activation_regularisation: float = 0.0) -> None:
        self.alpha = activation_regularisation
        self.beta = temporal_activation_regularisation
        self.states: dict[bool, State | None] = {True: None, False: None}  # by model.training

    def on_epoch_start(self, epoch: int) -> None:
        self.states[True] = None

    def on_eval_start(self) -> None:
        self.states[False] = None

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, targets = batch  # (B, T) each
        output = model(inputs, self.states[model.training])
        self.states[model.training] = detach_state(output.state)
        loss = F.cross_entropy(output.logits.flatten(0, 1), targets.flatten())  # (B*T, V)
        if model.training and self.alpha:
            loss = loss + self.alpha * output.dropped.pow(2).mean()
        if model.training and self.beta:
            loss = loss + self.beta * (output.hidden[:, 1:] - output.hidden[:, :-1]).pow(2).mean()
        return loss
