"""The LSTM and its kin: cell, layer, variants, GRU and plain RNN for comparison, and the
attention that reads one sequence from another."""

from lstmkit.nn.attention import Attention, SelfAttention
from lstmkit.nn.cell import LSTMCell
from lstmkit.nn.gru import GRU
from lstmkit.nn.lstm import LSTM
from lstmkit.nn.recording import (
    GATE_NAMES,
    GateTrace,
    most_varying_units,
    record_gates,
    top_layer_steps,
)
from lstmkit.nn.rnn import RNN
from lstmkit.steps.lstm import LSTMWeights, lstm_step

__all__ = ["GATE_NAMES", "GRU", "LSTM", "RNN", "Attention", "GateTrace", "LSTMCell", "LSTMWeights",
           "SelfAttention", "lstm_step", "most_varying_units", "record_gates",
           "top_layer_steps"]
