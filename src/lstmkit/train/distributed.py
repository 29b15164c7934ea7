"""Data parallelism over processes started by torchrun.

``torchrun --nproc_per_node=N -m lstmkit ...`` starts N copies of the program with
WORLD_SIZE, RANK, LOCAL_RANK and a rendezvous address in the environment. Each copy
computes the gradient of its share of every global batch, with its loss weighted by
``share / global batch``; one all-reduce then *sums* the gradients, which gives
exactly the gradient of the mean loss over the global batch that one process would
compute.

The gradients are summed by an explicit all-reduce after ``backward`` rather than by
wrapping the model in DistributedDataParallel, for two reasons that matter here:
``loss_fn`` receives the user's own model (so it may call its methods and
submodules, which DDP would silently leave unsynchronised), and gradual unfreezing
may switch ``requires_grad`` between epochs, which DDP fixes when it wraps the model.
LSTM training is sequential enough that DDP's overlap of communication with the
backward pass buys little.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lstmkit.errors import LstmkitError


def world_size() -> int:
    """Number of training processes (1 unless launched by torchrun with several)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that writes files and shows progress (rank 0)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the training processes."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sum(self, values: list[float]) -> list[float]:
        """Sum each number over all processes (identity for one process)."""
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is True on any of them."""
        return self.sum([float(flag)])[0] > 0

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Give every process rank 0's parameters and buffers."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each trainable parameter's gradient by its sum over all processes.

        A parameter no process used keeps ``grad = None``, as in a single process, so
        AdamW skips it instead of decaying it.
        """
        if not self.distributed:
            return
        trainable = [p for p in parameters if p.requires_grad]
        if not trainable:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trainable]
        used = torch.tensor([p.grad is not None for p in trainable], device=self.device)
        flat = torch.cat([g.reshape(-1) for g in grads] + [used.to(grads[0].dtype)])
        dist.all_reduce(flat)
        offset = 0
        for parameter in trainable:
            size = parameter.numel()
            summed = flat[offset:offset + size].view_as(parameter).to(parameter.dtype)
            parameter.grad = summed
            offset += size
        for parameter, used_by in zip(trainable, flat[offset:].tolist(), strict=True):
            if used_by == 0:
                parameter.grad = None


def resolve_device(name: str) -> torch.device:
    """Parse ``config.device``, refusing devices this machine does not have."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise LstmkitError(f"unknown device {name!r}; use 'cpu' or 'cuda' (--device)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LstmkitError(
            f"device {name!r} was asked for but CUDA is not available here; use --device cpu"
        )
    return device


@contextlib.contextmanager
def processes(device: torch.device) -> Iterator[Processes]:
    """Join the process group torchrun set up (if any) for the duration of training.

    Under torchrun the backend is gloo on CPU and NCCL on CUDA, where each process
    uses GPU ``LOCAL_RANK``. The group is created once per process and kept until it
    exits: a task that trains several models (an ensemble) calls fit several times,
    and a second group started on torchrun's store would meet the first one's keys
    there and hang.
    """
    size = world_size()
    if size <= 1:
        yield Processes(rank=0, world_size=1, device=device)
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        except ValueError as error:
            raise LstmkitError(
                f"WORLD_SIZE={size} is set but the process group could not start ({error}); "
                "launch with torchrun --nproc_per_node=N, or unset WORLD_SIZE"
            ) from error
        atexit.register(dist.destroy_process_group)
    yield Processes(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)
