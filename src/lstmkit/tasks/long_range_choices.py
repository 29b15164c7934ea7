"""The choices of the long-range experiments, importable without torch (the command
line builds its parser from them before any command runs)."""

TASKS = ("adding", "copy", "digits")
MODELS = ("lstm", "gru", "rnn")
LSTM_VARIANTS = ("plain", "forget0", "layer_norm", "peephole")
