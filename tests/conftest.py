"""Shared test set-up."""

import torch

# The test models are tiny: one thread avoids OpenMP contention on a busy 2-core machine.
torch.set_num_threads(1)
