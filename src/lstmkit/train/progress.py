"""What a person watching training sees: a tqdm bar per epoch and one log line per epoch.

The bar shows the running training loss; it appears only on rank 0, only when
``config.progress`` is on, and only when stderr is a terminal. The per-epoch line
goes to the ``lstmkit.train`` logger at INFO level (the CLI decides whether to show it).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

logger = logging.getLogger("lstmkit.train")


@contextlib.contextmanager
def held_back(*names: str) -> Iterator[None]:
    """Within the block, the named loggers (default: the loop's) pass warnings and errors
    only: for work that trains many small models and reports one line per model itself
    (a backtest's blocks, a study's trials)."""
    loggers = [logging.getLogger(name) for name in names or ("lstmkit.train",)]
    levels = [each.level for each in loggers]
    for each, level in zip(loggers, levels):
        each.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        for each, level in zip(loggers, levels):
            each.setLevel(level)


class EpochProgress:
    """A progress bar over one epoch's optimizer steps, with the live mean loss."""

    def __init__(self, epoch: int, epochs: int, steps: int, done: int, enabled: bool) -> None:
        # disable=None lets tqdm hide itself when stderr is not a terminal.
        self.bar = tqdm(
            total=steps,
            initial=done,  # steps of this epoch trained before a resume
            desc=f"epoch {epoch}/{epochs}",
            unit="step",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=None if enabled else True,
        )

    def update(self, mean_loss: float) -> None:
        """Count one step; ``mean_loss`` is the epoch's training loss so far."""
        self.bar.set_postfix_str(f"loss {mean_loss:.4g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Remove the bar (the epoch's summary goes to the log)."""
        self.bar.close()


def log_epoch(row: dict[str, Any], epochs: int) -> None:
    """Write one line summarising an epoch's row of the history."""
    val = "" if row["val_loss"] is None else f" val_loss {row['val_loss']:.6g}"
    logger.info(
        "epoch %d/%d step %d train_loss %.6g%s lr %.3g (%.1fs)",
        row["epoch"], epochs, row["step"], row["train_loss"], val, row["lr"], row["seconds"],
    )
