"""Whether backend="auto" runs the plain LSTM on native rather than fused: measured, not guessed.

Both kernels run the plain cell; which is faster depends on the shape and on whether a
backward follows. ``MEASURED`` holds, per benchmark shape, native's time over torch's
fused op for the plain config (from ``benchmarks/layer_speed.py``, which prints these
ratios). A call takes the ratio of the measured shape nearest its own (distance in
log B, log I, log H: the sequence length scales both kernels alike) and runs native
only when native was clearly faster there, by the margin ``NATIVE_MARGIN``; anything
closer is within this machine's timing noise and fused, torch's own op, is kept.
The table is from one CPU; on a GPU the plain config always runs fused (cuDNN).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# (T, B, I, H) -> (forward alone, forward + backward): native time / fused time, plain
# config, float32, 1 thread; printed at the end of `python benchmarks/layer_speed.py
# --cpu-clock` on the 2-core AMD EPYC (AVX2) development machine, torch 2.13.
MEASURED: dict[tuple[int, int, int, int], tuple[float, float]] = {
    (100, 1, 8, 32): (1.06, 0.96),
    (100, 32, 32, 64): (0.79, 0.87),
    (200, 16, 64, 128): (1.01, 1.04),
    (100, 64, 128, 256): (1.03, 0.91),
    (50, 64, 512, 512): (1.09, 0.98),
}

# native runs only where it took at most this fraction of fused's time
NATIVE_MARGIN = 0.85


def nearest_measured(batch: int, input_size: int, hidden_size: int) -> tuple[int, int, int, int]:
    """The benchmark shape closest to (B, I, H) in log space."""

    def distance(shape: tuple[int, int, int, int]) -> float:
        _, B, I, H = shape
        return math.dist(
            (math.log(B), math.log(I), math.log(H)),
            (math.log(batch), math.log(input_size), math.log(hidden_size)),
        )

    return min(MEASURED, key=distance)


def native_preferred(input_shape: torch.Size, hidden_size: int, weight: Tensor) -> bool:
    """For the plain config on input (T, B, I): is native clearly faster than fused here?

    weight is any of the layer's weights: its device, and whether a backward will follow
    (grad enabled and the weights need it), pick the measurement.
    """
    if weight.device.type != "cpu":
        return False
    _, batch, input_size = input_shape
    forward, training = MEASURED[nearest_measured(batch, input_size, hidden_size)]
    backward_follows = torch.is_grad_enabled() and weight.requires_grad
    return (training if backward_follows else forward) <= NATIVE_MARGIN
