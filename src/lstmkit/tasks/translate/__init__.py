"""Machine translation: an LSTM encoder-decoder with attention, beam search, sacreBLEU.

    from lstmkit.translate import Translator, TranslationConfig

    model = Translator(TranslationConfig(source_language="en", target_language="de"))
    model.fit("pairs.tsv", run_dir="runs/en-de")      # split by source sentence
    model.translate("Open the file")                 # beam search, detokenised
    model.evaluate()                                 # BLEU, chrF beside copying the source
    Translator.load("runs/en-de")

The network (Luong et al. 2015, with Bahdanau et al. 2015's additive score as an option):

    e_s = E[x_s]                              source embedding (shared with the target's
                                              when the vocabulary is)
    k_1..k_S = BiLSTM(e_1..e_S)               encoder states (H = two directions of H/2),
                                              optionally refined by self-attention blocks
    h_0 = tanh(W_b [k->_S ; k<-_1])           the decoder starts from the encoder's ends
    h_t = LSTM([E[y_(t-1)] ; a_(t-1)], h_(t-1))     input feeding: a_(t-1) goes back in
    alpha_t = softmax_s score(h_t, k_s)       dot, general or additive (lstmkit.nn.attention)
    a_t = tanh(W_c [sum_s alpha_ts k_s ; h_t])      the attentional state
    p(y_t) = softmax(E W a_t + b)             tied: the output layer is the target embedding

Training (lstmkit.train) reads token-count batches of pairs of about the same length,
padded and passed with ``lengths=``; the loss is label-smoothed cross-entropy summed per
sentence; early stopping and the best epoch follow greedy BLEU on validation sentences.
Decoding (``search``) is a batched beam search with GNMT's length penalty, n-best lists
and ensembles; the decoder step runs on the native streaming kernel.

One module per concept: ``config`` (TranslationConfig), ``network`` (TranslationNet and
its loss), ``search`` (beam search), ``metrics`` (sacreBLEU and the copy baseline),
``translator`` (the task: fit, translate, evaluate, align, save, load).
"""

from lstmkit.tasks.translate.config import TranslationConfig
from lstmkit.tasks.translate.network import TranslationNet, translation_loss
from lstmkit.tasks.translate.search import Hypothesis, beam_search, length_penalty
from lstmkit.tasks.translate.translator import Alignment, FitReport, Translator

__all__ = ["Alignment", "FitReport", "Hypothesis", "TranslationConfig", "TranslationNet",
           "Translator", "beam_search", "length_penalty", "translation_loss"]
