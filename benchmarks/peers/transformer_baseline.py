"""The Transformer side of benchmarks/translate.py: an encoder-decoder Transformer of about the
LSTM translator's parameter count, trained by lstmkit's own loop on the same token batches,
and decoded by lstmkit's own beam search, so the architecture is the only difference.

Runs in lstmkit's venv (torch only, no peer library):

    net = build(vocab_size, **sized_like(lstm_parameters, vocab_size))
    result = train_and_translate(train_ids, validation_ids, test_source_ids, vocab_size, ...)

The network (pre-norm, Xiong et al. 2020, which trains without a long warmup):

    x_0 = sqrt(d) E[token] + sinusoid[position]          one joint vocabulary: E embeds
                                                         source and target pieces and is
                                                         the output layer (logits E h + b)
    encoder: ``layers`` x (x + SelfAttn(LN x), x + FF(LN x)), then LN
    decoder: ``layers`` x (x + CausalSelfAttn(LN x), x + CrossAttn(LN x, memory),
                           x + FF(LN x)), then LN

built from torch's nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (batch_first,
norm_first, ReLU, dropout on embeddings, attention weights, residual branches and inside the
feed-forward), Xavier-uniform weights as nn.Transformer initialises them, embeddings
N(0, d^-1/2). Padding (PAD_ID 0) is masked out of the encoder's self-attention and of the
cross-attention; the decoder's self-attention is causal (padded target positions come after
every real one, so the causal mask already hides them).

Decoding duck-types lstmkit.tasks.translate.network.TranslationNet for
lstmkit.tasks.translate.search.beam_search: ``encode`` runs the encoder and projects every
decoder layer's cross-attention keys and values once per sentence; ``step`` advances the
N = B x K hypotheses by one token with cached self-attention keys/values (one new position per
step, nothing recomputed over the prefix); the K queries of a sentence read its encoder keys
together (no copy per beam), as the LSTM's step does. ``step``'s attention is the last decoder
layer's cross-attention, averaged over the heads. ``forward`` is teacher forcing over the
whole target at once through torch's modules, returning the logits of the real target
positions as TranslationNet.forward does; the cached step reproduces it (checked to 1e-5 on
the log-probabilities).

Training (:func:`train_and_translate`): lstmkit.train.fit with AdamW (betas 0.9, 0.999, as fit
fixes them), batches of ``BATCH_TOKENS`` tokens from TokenBatches, lstmkit's translation loss
with label smoothing 0.1, gradient norm clipped at 1, ``LR`` with ``WARMUP_STEPS`` of linear
warmup and then a cosine decay that follows the time budget (fit runs the curve on the larger
of the step and time fractions, so the rate reaches 0 when the budget is spent), no weight
decay. As for JoeyNMT (see run_joeynmt.py), the model at the end of the budget is the one
decoded: no validation during training, so none of the budget goes to it; the validation
loss is measured afterwards, outside every timing, as a sanity check (``select_best=True``
validates every epoch instead, within the budget, and keeps the best epoch).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.data.parallel_text import TokenBatches, TranslationBatch
from lstmkit.data.tokenizers import PAD_ID
from lstmkit.tasks.translate.network import Step, translation_loss
from lstmkit.tasks.translate.search import beam_search
from lstmkit.train import TrainConfig, fit
from lstmkit.train.loop import evaluate_loss

BATCH_TOKENS = 2000
LR = 2e-3
"""Peak learning rate, lstmkit's LSTM's too. 2e-3 beat 1e-3 and 5e-4 in every short trial
(number words at d_model 60 and 108; gettext en-de at 5M parameters, 300 s), without
instability at the peak after a 100-step warmup."""
WARMUP_STEPS = 400
"""Linear warmup: about a third of the steps of a 20-minute, 1-thread run at 5M parameters
(~1 s a step); a 60 s run ends inside it."""
LABEL_SMOOTHING = 0.1
DROPOUT = 0.1
DECODE_BATCH = 64
"""Sentences decoded side by side, sorted by length (as lstmkit's Translator does)."""
FEEDFORWARD_RATIO = 4
"""d_ff = 4 d_model before :func:`sized_like` trims it to the target count."""


class Encoded(NamedTuple):
    """A batch of B source sentences as the decoder reads them."""

    memory: Tensor  # (B, S, d) the encoder's output
    mask: Tensor  # (B, S) True at real (unpadded) positions
    keys: tuple[Tensor, ...]  # per decoder layer: cross-attention keys (B, heads, S, d_head)
    values: tuple[Tensor, ...]  # per decoder layer: cross-attention values, the same shape


class DecoderState(NamedTuple):
    """The self-attention cache of N hypotheses after t tokens (N = B sentences x K beams)."""

    keys: tuple[Tensor, ...]  # per decoder layer: (N, heads, t, d_head)
    values: tuple[Tensor, ...]  # per decoder layer: (N, heads, t, d_head)

    def select(self, rows: Tensor) -> DecoderState:
        """The caches of hypotheses ``rows`` (N',), in that order (beam reordering)."""
        return DecoderState(tuple(k[rows] for k in self.keys),
                            tuple(v[rows] for v in self.values))


class TransformerNet(nn.Module):
    """Encoder-decoder Transformer with one shared (source, target, output) embedding."""

    def __init__(self, vocab_size: int, d_model: int = 256, feedforward: int = 1024,
                 layers: int = 3, heads: int = 4, dropout: float = DROPOUT) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.sizes = {"d_model": d_model, "feedforward": feedforward, "layers": layers,
                      "heads": heads, "dropout": dropout}
        self.d_model, self.heads, self.d_head = d_model, heads, d_model // heads
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, heads, feedforward, dropout, batch_first=True,
                                       norm_first=True),
            layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d_model, heads, feedforward, dropout, batch_first=True,
                                       norm_first=True),
            layers, norm=nn.LayerNorm(d_model))
        self.dropout = nn.Dropout(dropout)
        for name, parameter in self.named_parameters():
            if parameter.dim() > 1 and not name.startswith("embedding"):
                nn.init.xavier_uniform_(parameter)  # as nn.Transformer does
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)  # tied logits start small
        self.register_buffer("positions", sinusoids(1024, d_model), persistent=False)

    # ------------------------------------------------------------------ shared parts

    def _embed(self, tokens: Tensor, offset: int = 0) -> Tensor:
        """tokens (B, T) at positions offset .. offset + T - 1 -> (B, T, d)."""
        end = offset + tokens.shape[1]
        if end > self.positions.shape[0]:
            self.positions = sinusoids(max(end, 2 * self.positions.shape[0]),
                                       self.d_model).to(self.positions.device)
        x = self.embedding(tokens) * math.sqrt(self.d_model) + self.positions[offset:end]
        return self.dropout(x)

    def _memory(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """source (B, S), lengths (B,) -> the encoder's output (B, S, d) and mask (B, S)."""
        mask = torch.arange(source.shape[1], device=source.device) < lengths.unsqueeze(1)
        memory = self.encoder(self._embed(source), src_key_padding_mask=~mask)
        return memory, mask

    def _logits(self, hidden: Tensor) -> Tensor:
        return F.linear(hidden, self.embedding.weight, self.output_bias)

    # ------------------------------------------------------------------ training

    def forward(self, batch: TranslationBatch) -> Tensor:
        """Teacher forcing: the logits of the real (unpadded) target positions, (n, V), in
        the order of ``batch.target_output[batch.target_output != 0]`` (as
        TranslationNet.forward, which translation_loss reads; the output layer skips the
        padding)."""
        real = batch.target_output != PAD_ID  # (B, T)
        return self._logits(self.decoder_states(batch)[real])

    def decoder_states(self, batch: TranslationBatch) -> Tensor:
        """Teacher forcing: the decoder's output at every target position, (B, T, d)."""
        memory, mask = self._memory(batch.source, batch.source_lengths)
        T = batch.target_input.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=memory.device).triu(1)
        return self.decoder(self._embed(batch.target_input), memory, tgt_mask=causal,
                            memory_key_padding_mask=~mask, tgt_is_causal=True)

    # ------------------------------------------------------------------ decoding

    def encode(self, source: Tensor, lengths: Tensor) -> Encoded:
        """source (B, S) ids padded with 0, lengths (B,) -> :class:`Encoded`, with every
        decoder layer's cross-attention keys and values computed once."""
        memory, mask = self._memory(source, lengths)
        B, S, d = memory.shape
        keys, values = [], []
        for layer in self.decoder.layers:
            attention = layer.multihead_attn
            projected = F.linear(memory, attention.in_proj_weight[d:],
                                 attention.in_proj_bias[d:])  # (B, S, 2d)
            k, v = projected.view(B, S, 2, self.heads, self.d_head).permute(2, 0, 3, 1, 4)
            keys.append(k)
            values.append(v)
        return Encoded(memory, mask, tuple(keys), tuple(values))

    @staticmethod
    def select_sentences(encoded: Encoded, sentences: Tensor) -> Encoded:
        """The encoded sentences at batch positions ``sentences`` (search drops finished
        sentences from its batch)."""
        return Encoded(encoded.memory[sentences], encoded.mask[sentences],
                       tuple(k[sentences] for k in encoded.keys),
                       tuple(v[sentences] for v in encoded.values))

    def initial_state(self, encoded: Encoded, beams: int = 1) -> DecoderState:
        """Empty caches, ``beams`` rows per sentence."""
        N = encoded.memory.shape[0] * beams
        empty = encoded.memory.new_zeros(N, self.heads, 0, self.d_head)
        n = len(self.decoder.layers)
        return DecoderState((empty,) * n, (empty,) * n)

    def stepper(self) -> None:
        """No separate step function: :meth:`step` runs the layers' own weights."""
        return None

    def step(self, stepper: Any, tokens: Tensor, state: DecoderState, encoded: Encoded,
             beams: int) -> Step:
        """Advance N = B * beams hypotheses by one token each: tokens (N,) were the last
        ones chosen; the rows of sentence b are b * beams .. (b + 1) * beams - 1. The
        attention returned is the last layer's cross-attention averaged over heads."""
        N, d, H, dh = tokens.shape[0], self.d_model, self.heads, self.d_head
        B, S = encoded.mask.shape
        scale = dh ** -0.5
        t = state.keys[0].shape[2]  # tokens already in the cache
        x = self._embed(tokens.unsqueeze(1), offset=t)[:, 0]  # (N, d)
        padding = ~encoded.mask[:, None, None, :]  # (B, 1, 1, S)
        keys, values = [], []
        weights = x.new_zeros(B, H, beams, S)
        for layer, cached_k, cached_v, memory_k, memory_v in zip(
                self.decoder.layers, state.keys, state.values, encoded.keys, encoded.values):
            # causal self-attention: the new position reads the cache and itself
            own = layer.self_attn
            q, k, v = F.linear(layer.norm1(x), own.in_proj_weight,
                               own.in_proj_bias).view(N, 3, H, 1, dh).unbind(1)
            k = torch.cat([cached_k, k], dim=2)  # (N, H, t + 1, dh)
            v = torch.cat([cached_v, v], dim=2)
            keys.append(k)
            values.append(v)
            read = torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v  # (N, H, 1, dh)
            x = x + own.out_proj(read.reshape(N, d))
            # cross-attention: the K queries of a sentence read its keys together
            cross = layer.multihead_attn
            q = F.linear(layer.norm2(x), cross.in_proj_weight[:d], cross.in_proj_bias[:d])
            q = q.view(B, beams, H, dh).transpose(1, 2)  # (B, H, K, dh)
            scores = (q @ memory_k.transpose(-1, -2) * scale).masked_fill(
                padding, float("-inf"))  # (B, H, K, S)
            weights = torch.softmax(scores, dim=-1)
            read = (weights @ memory_v).transpose(1, 2).reshape(N, d)
            x = x + cross.out_proj(read)
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        logits = self._logits(self.decoder.norm(x))  # (N, V)
        attention = weights.mean(dim=1).reshape(N, S)  # (B, K, S) -> (N, S)
        return Step(logits, DecoderState(tuple(keys), tuple(values)), attention)


def sinusoids(length: int, d_model: int) -> Tensor:
    """Vaswani et al.'s positional encodings, (length, d_model): sin on even, cos on odd
    dimensions."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                          * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model + d_model % 2)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table[:, :d_model]


# --------------------------------------------------------------------------- sizing


def parameter_count(vocab_size: int, d_model: int, feedforward: int, layers: int) -> int:
    """The trainable parameters of ``build(vocab_size, d_model=..., ...)`` (the shared
    embedding counted once; heads change nothing)."""
    d, f, V = d_model, feedforward, vocab_size
    encoder_layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d  # attention, FF, 2 norms
    decoder_layer = 8 * d * d + 8 * d + 2 * d * f + f + d + 6 * d  # 2 attentions, FF, 3 norms
    return V * d + V + layers * (encoder_layer + decoder_layer) + 4 * d  # + final norms


def sized_like(target_parameters: int, vocab_size: int, layers: int = 3,
               heads: int = 4) -> dict[str, int]:
    """Sizes for :func:`build` with about ``target_parameters`` parameters.

    Rule: ``layers`` encoder and ``layers`` decoder layers of ``heads`` heads; d_model is the
    multiple of ``heads`` whose count with d_ff = 4 d_model comes closest to the target; then
    d_ff is moved (within 2..8 d_model) to the value that comes closest. With the one
    d_model step costing about 3% of the count near 5M parameters, the result is within a
    fraction of a percent; a ValueError says when it cannot come within 5% (a vocabulary so
    large that its embedding alone is most of the budget).
    """
    def count(d: int, f: int) -> int:
        return parameter_count(vocab_size, d, f, layers)

    best, d = heads, heads
    while count(d, FEEDFORWARD_RATIO * d) <= 2 * target_parameters:
        if (abs(count(d, FEEDFORWARD_RATIO * d) - target_parameters)
                < abs(count(best, FEEDFORWARD_RATIO * best) - target_parameters)):
            best = d
        d += heads
    d = best
    per_ff_unit = count(d, 1) - count(d, 0)
    f = round((target_parameters - count(d, 0)) / per_ff_unit)
    f = min(max(f, 2 * d), 8 * d)
    if abs(count(d, f) - target_parameters) > 0.05 * target_parameters:
        raise ValueError(f"no Transformer of {layers}+{layers} layers comes within 5% of "
                         f"{target_parameters:,} parameters with a vocabulary of "
                         f"{vocab_size:,} (closest: d_model {d}, d_ff {f}: "
                         f"{count(d, f):,})")
    return {"d_model": d, "feedforward": f, "layers": layers, "heads": heads}


def build(vocab_size: int, **sizes: Any) -> TransformerNet:
    """A :class:`TransformerNet` of ``sizes`` (d_model, feedforward, layers, heads,
    dropout; see :func:`sized_like`)."""
    return TransformerNet(vocab_size, **sizes)


def parameters_of(net: nn.Module) -> int:
    """Trainable parameters, a shared tensor once."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- the run


class _CountingLoss:
    """lstmkit's translation loss, counting the target tokens of the training batches."""

    def __init__(self, mean_target_length: float) -> None:
        self.loss = translation_loss(LABEL_SMOOTHING, mean_target_length)
        self.target_tokens = 0

    def __call__(self, net: nn.Module, batch: TranslationBatch) -> Tensor:
        if net.training:
            self.target_tokens += int((batch.target_output != PAD_ID).sum())
        return self.loss(net, batch)


def _token_batches(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], bos_id: int,
                   eos_id: int, held_out: bool) -> TokenBatches:
    """The pairs with both sides non-empty, batched by ``BATCH_TOKENS``; held-out pairs
    longer than that get a batch of their own size, as in lstmkit's Translator."""
    kept = [(list(s), list(t)) for s, t in pairs if len(s) and len(t)]
    longest = max((max(len(s), len(t) + 1) for s, t in kept), default=0)
    return TokenBatches([s for s, _ in kept], [t for _, t in kept],
                        max(BATCH_TOKENS, longest) if held_out else BATCH_TOKENS,
                        bos_id, eos_id)


def translate_ids(net: TransformerNet, sources: Sequence[Sequence[int]], *, bos_id: int,
                  eos_id: int, beam_size: int, length_penalty: float,
                  max_output_ratio: float) -> list[list[int]]:
    """The best translation of each source (ids without BOS/EOS), in input order: batches of
    ``DECODE_BATCH`` sentences sorted by length, an empty source translating to nothing."""
    net.eval()
    results: list[list[int]] = [[] for _ in sources]
    order = sorted((n for n in range(len(sources)) if len(sources[n])),
                   key=lambda n: len(sources[n]))
    for start in range(0, len(order), DECODE_BATCH):
        rows = order[start:start + DECODE_BATCH]
        lengths = torch.tensor([len(sources[n]) for n in rows])
        source = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for b, n in enumerate(rows):
            source[b, :len(sources[n])] = torch.tensor(list(sources[n]), dtype=torch.long)
        found = beam_search([net], source, lengths, beam_size=beam_size, bos_id=bos_id,
                            eos_id=eos_id, alpha=length_penalty,
                            max_output_ratio=max_output_ratio)
        for n, hypotheses in zip(rows, found):
            results[n] = hypotheses[0].tokens
    return results


def train_and_translate(train_pairs_ids: Sequence[tuple[Sequence[int], Sequence[int]]],
                        validation_pairs_ids: Sequence[tuple[Sequence[int], Sequence[int]]],
                        test_source_ids: Sequence[Sequence[int]], vocab_size: int,
                        bos_id: int, eos_id: int, budget_s: float, seed: int, beam_size: int,
                        length_penalty: float, max_output_ratio: float,
                        sizes: dict[str, Any], *, lr: float = LR,
                        warmup_steps: int = WARMUP_STEPS,
                        select_best: bool = False) -> dict[str, Any]:
    """Train a :func:`build` ``(vocab_size, **sizes)`` network for ``budget_s`` seconds of
    wall clock and beam-decode ``test_source_ids`` (see the module docstring).

    Pairs are (source ids, target ids) without BOS/EOS; the caller filters the training
    pairs by length (a pair longer than ``BATCH_TOKENS`` is an error), pairs with an empty
    side are left out. Returns {"train_seconds", "steps" (= "updates"), "epochs",
    "stop_reason", "target_tokens_trained", "target_tokens_per_s", "parameters", "sizes",
    "lr", "warmup_steps", "validation_loss" (teacher-forced, per target token,
    label-smoothed as in training, measured after training), "test_hypotheses_ids" (ids
    without BOS/EOS, in input order), "decode_seconds", "sentences_per_s"}.
    Threads are the caller's to set (torch.set_num_threads).
    """
    torch.manual_seed(seed)
    net = build(vocab_size, **sizes)
    train_set = _token_batches(train_pairs_ids, bos_id, eos_id, held_out=False)
    if len(train_set) == 0:
        raise ValueError("no training pair has both sides non-empty")
    validation_set: TokenBatches | None = _token_batches(validation_pairs_ids, bos_id, eos_id,
                                                         held_out=True)
    if len(validation_set) == 0:
        validation_set = None
    loss = _CountingLoss(train_set.target_tokens() / len(train_set))
    config = TrainConfig(epochs=1000, batch_size=BATCH_TOKENS, lr=lr, schedule="cosine",
                         warmup_steps=warmup_steps, grad_clip=1.0, patience=None, seed=seed,
                         progress=False, time_budget_s=budget_s)
    started = time.monotonic()
    result = fit(net, train_set, loss, config,
                 val_data=validation_set if select_best else None,
                 collate_fn=train_set.collate, started=started)
    train_seconds = time.monotonic() - started
    net.eval()
    validation_loss = None
    if validation_set is not None:
        validation_loss = evaluate_loss(net, validation_set, loss, BATCH_TOKENS,
                                        train_set.collate)
    decode_started = time.monotonic()
    hypotheses = translate_ids(net, test_source_ids, bos_id=bos_id, eos_id=eos_id,
                               beam_size=beam_size, length_penalty=length_penalty,
                               max_output_ratio=max_output_ratio)
    decode_seconds = time.monotonic() - decode_started
    return {"train_seconds": train_seconds, "steps": result.steps, "updates": result.steps,
            "epochs": result.epochs_run, "stop_reason": result.stop_reason,
            "target_tokens_trained": loss.target_tokens,
            "target_tokens_per_s": loss.target_tokens / max(train_seconds, 1e-9),
            "parameters": parameters_of(net), "sizes": dict(net.sizes), "lr": lr,
            "warmup_steps": warmup_steps, "validation_loss": validation_loss,
            "test_hypotheses_ids": hypotheses, "decode_seconds": decode_seconds,
            "sentences_per_s": len(test_source_ids) / max(decode_seconds, 1e-9)}
