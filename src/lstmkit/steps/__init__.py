"""The pure step maths: one time step of each recurrence, and the LSTM's weight tuple.

- ``lstm``: the LSTM step under its gate equations, with every variant, and LSTMWeights;
- ``gru``: the GRU step (torch.nn.GRU's equations);
- ``rnn``: the plain tanh RNN step.

Functions of tensors only: this package imports no other lstmkit package, so the
kernels (lstmkit.kernels) and the layers (lstmkit.nn) both build on it.
"""
