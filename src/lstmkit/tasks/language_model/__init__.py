"""Language modelling: predict the next token of a text, measure it, generate from it.

    from lstmkit.lm import LanguageModel, LanguageModelConfig

    model = LanguageModel(LanguageModelConfig(tokenizer="char"))
    report = model.fit("stdlib", run_dir="runs/pylm")     # files, folders, or "stdlib"
    model.evaluate().bits_per_character                  # the corpus's test part
    model.generate("def ", max_tokens=200, temperature=0.8, seed=0)
    LanguageModel.load("runs/pylm")

The network (AWD-LSTM, Merity et al. 2017, on lstmkit.nn.LSTM):

    x_t = E'[token_t]             embedding; embedding dropout zeroes whole rows of E
    x_t = m_0 * x_t               locked dropout: one mask m per sequence, the same at every step
    h^k = LSTM_k(h^(k-1))         k = 1..L, weight drop (DropConnect) on each W_hh;
                                  locked dropout m_k between layers
    y_t = m_L * h^L_t             output dropout (locked)
    logits_t = E W y_t + b        tied: the output layer is the embedding matrix E (W: a
                                  linear map to the embedding size when sizes differ)
    loss = CE + alpha mean(y^2) + beta mean((h^L_t - h^L_(t-1))^2)    AR and TAR (training)

Training reads the corpus as ``batch_size`` contiguous streams, ``bptt`` tokens at a
time (lstmkit.data.token_stream); the state at the end of one batch, detached, starts
the next (truncated backpropagation through time).

Metrics: nats per token, perplexity exp(nats/token), and bits per character
= total nats / characters / ln 2, where characters are those of the text itself, so
character, word and BPE models compare on one scale.

One module per concept: ``config`` (LanguageModelConfig), ``network``
(LanguageModelNet, its regularisers and StreamLoss), ``metrics`` (cross entropy, the
unigram baseline, evaluation of a stream), ``generation`` (sampling the next token),
``model`` (the LanguageModel task and the encoder it hands to a classifier).
"""

from lstmkit.tasks.language_model.config import LanguageModelConfig
from lstmkit.tasks.language_model.generation import next_token_probabilities
from lstmkit.tasks.language_model.metrics import CrossEntropy
from lstmkit.tasks.language_model.model import (
    FitReport,
    LanguageModel,
    PretrainedEncoder,
    pretrained_encoder,
)
from lstmkit.tasks.language_model.network import LanguageModelNet, StreamLoss

__all__ = ["CrossEntropy", "FitReport", "LanguageModel", "LanguageModelConfig",
           "LanguageModelNet", "PretrainedEncoder", "StreamLoss", "next_token_probabilities",
           "pretrained_encoder"]
