"""Speech recognition: an LSTM acoustic model trained with CTC over characters.

    from lstmkit.speech import Recogniser, SpeechConfig

    model = Recogniser(SpeechConfig())                # bidirectional; streaming: False
    model.fit("corpus/train.csv", run_dir="runs/asr", validation="corpus/validation.csv")
    model.transcribe("hello.wav").text               # prefix beam search
    model.evaluate("corpus/test.csv")                 # WER, CER beside greedy decoding
    stream = model.stream(); stream.push(samples); stream.finish()
    Recogniser.load("runs/asr")

The network (Graves et al. 2013; Sak et al. 2015's frame stacking):

    m_t = log mel(x) at frame t               80 bins, 25 ms windows every 10 ms
    s_u = [m_(4u) ; ... ; m_(4u+3)]           normalised frames stacked: a step per 40 ms
    h_u = (Bi)LSTM(s_1..s_U)                  lstmkit.nn.LSTM, any variant
    p(a | u) = softmax(W h_u + b)             characters and CTC's blank

trained with CTC, SpecAugment and optional speed and noise copies; decoded by best
path or CTC prefix beam search, optionally fused with an lstmkit character language
model, with word times from the steps where characters were emitted.

One module per concept: ``config`` (SpeechConfig), ``network`` (SpeechNet and its
loss), ``decoding`` (greedy, prefix beam search, timestamps), ``fusion`` (a character
LM as the beam's scorer), ``streaming`` (SpeechStream), ``recogniser`` (the task).
"""

from lstmkit.tasks.speech.config import SpeechConfig
from lstmkit.tasks.speech.decoding import Hypothesis, Word, greedy_decode, prefix_beam_search
from lstmkit.tasks.speech.fusion import CharacterLanguageModel
from lstmkit.tasks.speech.network import SpeechNet, ctc_loss
from lstmkit.tasks.speech.recogniser import FitReport, Recogniser, Transcript
from lstmkit.tasks.speech.streaming import SpeechStream

__all__ = ["CharacterLanguageModel", "FitReport", "Hypothesis", "Recogniser",
           "SpeechConfig", "SpeechNet", "SpeechStream", "Transcript", "Word", "ctc_loss",
           "greedy_decode", "prefix_beam_search"]
