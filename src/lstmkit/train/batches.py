"""Global batches, each process's share of them, and turning indices into a batch.

An epoch's order (see :mod:`lstmkit.train.seeding`) is cut into global batches of
``batch_size`` items. With N processes, process r trains on the r-th contiguous
piece of every global batch (pieces differ in size by at most one). Because the
pieces keep their place across batches, item ``t * batch_size + j`` always goes to
the same process: a language model's stream ``j`` stays on one process and its
carried state stays valid.

A dataset may plan its own global batches instead (translation's token-count batches
of similar lengths): it then has ``batch_plan(order) -> list of index arrays``, and
the batches it returns are shared among the processes in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate


@dataclass(frozen=True)
class Share:
    """This process's part of one global batch."""

    indices: np.ndarray  # dataset indices this process computes
    global_size: int  # items in the whole global batch, over all processes


def global_batches(dataset: Dataset, order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The global batches of one pass over ``order``: the dataset's own ``batch_plan``
    when it has one, else ``order`` cut into pieces of ``batch_size``."""
    plan = getattr(dataset, "batch_plan", None)
    if plan is not None:
        return plan(order)
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def plan_shares(
    batches: list[np.ndarray], rank: int, world_size: int, training: bool
) -> list[Share]:
    """Process ``rank``'s share of each global batch.

    In training every process must take part in every step, so a batch with fewer
    items than processes is dropped (single-process runs keep it).
    """
    shares = []
    for global_batch in batches:
        if training and len(global_batch) < world_size:
            continue
        piece = np.array_split(global_batch, world_size)[rank]
        shares.append(Share(indices=piece, global_size=len(global_batch)))
    return shares


def already_batched(batch: Any) -> Any:
    """The collate_fn of a dataset whose ``__getitems__`` gathers a whole batch itself
    (by tensor indexing): the batch as it comes."""
    return batch


def fetch(
    dataset: Dataset, indices: np.ndarray, collate_fn: Callable[[list], Any] | None
) -> Any:
    """Load and collate the items at ``indices`` the way a DataLoader would."""
    positions = indices.tolist()
    get_items = getattr(dataset, "__getitems__", None)
    items = get_items(positions) if get_items is not None else [dataset[i] for i in positions]
    return (collate_fn or default_collate)(items)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside a (nested tuple/list/dict) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(value, device) for value in batch]
        if hasattr(batch, "_fields"):  # namedtuple
            return type(batch)(*moved)
        return type(batch)(moved)
    return batch
