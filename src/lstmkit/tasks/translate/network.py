"""The encoder-decoder with attention (see the package's docstring for its equations),
its training loss, and the decoder step that search calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.data.parallel_text import TranslationBatch
from lstmkit.data.tokenizers import PAD_ID
from lstmkit.nn import LSTM, Attention, SelfAttention
from lstmkit.tasks.translate.config import TranslationConfig

Pair = tuple[Tensor, Tensor]  # an LSTM state (h, c), each (L, N, H)


class Encoded(NamedTuple):
    """A batch of B source sentences as the decoder reads them."""

    states: Tensor  # (B, S, H) encoder states
    mask: Tensor  # (B, S) True at real (unpadded) positions
    prepared: Tensor  # (B, S, A) the attention's key term, computed once
    initial: Tensor  # (L, B, H) the decoder's initial hidden state, per decoder layer


class DecoderState(NamedTuple):
    """The decoder's state for N hypotheses (N = B sentences x K beams)."""

    h: Tensor  # (L, N, H)
    c: Tensor  # (L, N, H)
    feed: Tensor  # (N, H) the previous attentional state (zeros before the first step)

    def select(self, rows: Tensor) -> DecoderState:
        """The states of hypotheses ``rows`` (N',), in that order (beam reordering)."""
        return DecoderState(self.h[:, rows], self.c[:, rows], self.feed[rows])


class Step(NamedTuple):
    logits: Tensor  # (N, V) of the next token (unnormalised: search normalises what it keeps)
    state: DecoderState
    attention: Tensor  # (N, S) where the step looked


class TranslationNet(nn.Module):
    """Embeddings, bidirectional LSTM encoder (+ self-attention), attentional LSTM decoder,
    output layer tied to the target embedding."""

    def __init__(self, source_vocab_size: int, target_vocab_size: int,
                 config: TranslationConfig) -> None:
        super().__init__()
        self.config = config
        E, H, p = config.embedding_dim, config.hidden_size, config.dropout
        self.target_embedding = nn.Embedding(target_vocab_size, E, padding_idx=PAD_ID)
        nn.init.normal_(self.target_embedding.weight, std=E ** -0.5)  # tied logits start small
        if config.shared_vocabulary:
            self.source_embedding = self.target_embedding
        else:
            self.source_embedding = nn.Embedding(source_vocab_size, E, padding_idx=PAD_ID)
        self.encoder = LSTM(E, H // 2, config.encoder_layers, batch_first=True,
                            bidirectional=True, dropout=p, **config.lstm)
        self.self_attention = nn.ModuleList(
            SelfAttention(H, config.self_attention_heads, p)
            for _ in range(config.self_attention_layers))
        # the encoder's last forward and first backward states -> every decoder layer's h_0
        self.bridge = nn.Linear(H, H * config.decoder_layers)
        self.decoder = LSTM(E + (H if config.input_feeding else 0), H, config.decoder_layers,
                            batch_first=True, dropout=p, **config.lstm)
        self.attention = Attention(config.attention, H, H)
        self.combine = nn.Linear(2 * H, H, bias=False)  # W_c of the attentional state
        self.to_embedding = nn.Linear(H, E) if H != E else nn.Identity()
        self.output_bias = nn.Parameter(torch.zeros(target_vocab_size))
        self.dropout = nn.Dropout(p)

    # ------------------------------------------------------------------ encoder

    def encode(self, source: Tensor, lengths: Tensor) -> Encoded:
        """source (B, S) ids padded with 0, lengths (B,) -> :class:`Encoded`."""
        B, S = source.shape
        mask = torch.arange(S).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
        x = self.dropout(self.source_embedding(source))  # (B, S, E)
        states, (h_n, _) = self.encoder(x, lengths=lengths)  # (B, S, H), h_n (2L, B, H/2)
        for block in self.self_attention:
            states = block(states, mask)
        last = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # top layer's two directions: (B, H)
        initial = torch.tanh(self.bridge(last))  # (B, L*H)
        initial = initial.view(B, self.config.decoder_layers, -1).transpose(0, 1)  # (L, B, H)
        return Encoded(states, mask, self.attention.prepare_keys(states), initial.contiguous())

    @staticmethod
    def select_sentences(encoded: Encoded, sentences: Tensor) -> Encoded:
        """The encoded sentences at batch positions ``sentences`` (search drops the
        sentences it has finished)."""
        return Encoded(encoded.states[sentences], encoded.mask[sentences],
                       encoded.prepared[sentences], encoded.initial[:, sentences])

    def initial_state(self, encoded: Encoded, beams: int = 1) -> DecoderState:
        """The decoder's state before its first step, ``beams`` rows per sentence."""
        h = encoded.initial.repeat_interleave(beams, dim=1)  # (L, B*K, H)
        return DecoderState(h, torch.zeros_like(h), h.new_zeros(h.shape[1], h.shape[2]))

    # ------------------------------------------------------------------ training

    def forward(self, batch: TranslationBatch) -> Tensor:
        """Teacher forcing: the logits of the real (unpadded) target positions, (n, V), in
        the order of ``batch.target_output[batch.target_output != 0]``."""
        encoded = self.encode(batch.source, batch.source_lengths)
        y = self.dropout(self.target_embedding(batch.target_input))  # (B, T, E)
        state = self.initial_state(encoded)
        if not self.config.input_feeding:
            # the decoder never sees its attention, so it runs over the whole target at once
            hidden, _ = self.decoder(y, (state.h, state.c), lengths=batch.target_lengths)
            attentional, _ = self._attend(hidden, encoded)  # (B, T, H)
        else:
            columns = []
            hc = (state.h, state.c)
            feed = state.feed
            for t in range(y.shape[1]):
                x_t = torch.cat([y[:, t], feed], dim=-1).unsqueeze(1)  # (B, 1, E + H)
                hidden, hc = self.decoder(x_t, hc)
                attended, _ = self._attend(hidden, encoded)  # (B, 1, H)
                feed = attended[:, 0]
                columns.append(attended)
            attentional = torch.cat(columns, dim=1)  # (B, T, H)
        # the output layer is the costliest step (H x V per token): padding skips it
        real = batch.target_output != PAD_ID  # (B, T)
        return self._logits(self.dropout(attentional[real]))  # (n, V)

    def _attend(self, hidden: Tensor, encoded: Encoded) -> tuple[Tensor, Tensor]:
        """hidden (B, N, H) -> attentional state tanh(W_c [context; h]) (B, N, H) and the
        attention weights (B, N, S)."""
        context, weights = self.attention(hidden, encoded.states, mask=encoded.mask,
                                          prepared=encoded.prepared)
        return torch.tanh(self.combine(torch.cat([context, hidden], dim=-1))), weights

    def _logits(self, attentional: Tensor) -> Tensor:
        return F.linear(self.to_embedding(attentional), self.target_embedding.weight,
                        self.output_bias)

    # ------------------------------------------------------------------ decoding

    def stepper(self) -> Callable[[Tensor, Pair], tuple[Tensor, Pair]]:
        """The decoder's one-step function for inference (see LSTM.streaming_step)."""
        return self.decoder.streaming_step()

    def step(self, stepper: Callable, tokens: Tensor, state: DecoderState, encoded: Encoded,
             beams: int) -> Step:
        """Advance N = B * beams hypotheses by one token each: tokens (N,) were the last
        ones chosen; the rows of sentence b are b * beams .. (b + 1) * beams - 1."""
        y = self.target_embedding(tokens)  # (N, E)
        x = torch.cat([y, state.feed], dim=-1) if self.config.input_feeding else y
        # the streaming step advances a state in place: give it copies, the beam still
        # reads the old rows
        h, c = state.h.clone(), state.c.clone()
        hidden, (h, c) = stepper(x, (h, c))  # (N, H)
        B = encoded.states.shape[0]
        queries = hidden.view(B, beams, -1)  # (B, K, H): a sentence's beams share its keys
        attentional, weights = self._attend(queries, encoded)  # (B, K, H), (B, K, S)
        attentional = attentional.reshape(B * beams, -1)
        return Step(self._logits(attentional), DecoderState(h, c, attentional),
                    weights.reshape(B * beams, -1))



def translation_loss(label_smoothing: float, mean_target_length: float
                     ) -> Callable[[TranslationNet, TranslationBatch], Tensor]:
    """The training loss: per pair, the summed (label-smoothed) cross-entropy of its target
    tokens, averaged over the pairs and divided by the training set's mean target length.

    Summing per pair keeps a token's weight the same in every batch, and averaging over
    pairs lets N processes split a batch exactly (lstmkit.train); the constant divisor
    makes the number read as a loss per token.
    """

    def loss(net: TranslationNet, batch: TranslationBatch) -> Tensor:
        logits = net(batch)  # (n, V): the real target positions
        targets = batch.target_output[batch.target_output != PAD_ID]  # (n,)
        total = F.cross_entropy(logits, targets, reduction="sum",
                                label_smoothing=label_smoothing)
        return total / (len(batch.target_lengths) * mean_target_length)

    return loss
