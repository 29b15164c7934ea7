"""Checkpoint averaging: the mean of the weights at the ends of the last few epochs.

Averaging the weights of nearby points on the training path lands nearer the middle of
the valley they sit in, which usually translates a little better than any one of them
(Junczys-Dowmunt et al. 2016; OpenNMT's and fairseq's average_checkpoints). The
translator keeps the average only where it scores better on the validation sentences.

The snapshots live in memory and, for a run directory, in its work folder, so a resumed
run averages the same weights an uninterrupted one does.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lstmkit.io.weights import load_weights, read_weights_metadata, save_weights

SNAPSHOT_FILE = "average-{slot}.safetensors"


class WeightAverage:
    """The training loop's ``on_epoch_end`` hook: keeps the last ``count`` epochs' weights."""

    def __init__(self, count: int, folder: Path | None = None, resumed: bool = False) -> None:
        self.count, self.folder = count, folder
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        if folder is not None and resumed:
            for slot in range(count):
                path = folder / SNAPSHOT_FILE.format(slot=slot)
                if path.is_file():
                    epoch = int(read_weights_metadata(path)["epoch"])
                    self.snapshots[epoch] = load_weights(path)

    def on_epoch_end(self, epoch: int, model: torch.nn.Module) -> None:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.snapshots[epoch] = weights
        for old in [e for e in self.snapshots if e <= epoch - self.count]:
            del self.snapshots[old]
        if self.folder is not None:
            save_weights(self.folder / SNAPSHOT_FILE.format(slot=epoch % self.count), weights,
                         {"epoch": str(epoch)})

    def epochs(self) -> list[int]:
        return sorted(self.snapshots)

    def average(self) -> dict[str, torch.Tensor] | None:
        """The mean of the kept weights (None with fewer than two epochs to average)."""
        if len(self.snapshots) < 2:
            return None
        states = list(self.snapshots.values())
        return {name: torch.stack([s[name].to(torch.float64) for s in states]).mean(0)
                .to(states[0][name].dtype) for name in states[0]}
