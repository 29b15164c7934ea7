"""Batching concurrent requests: many small network calls become one.

Requests that arrive while the network is busy wait in a queue; when it is free, all
waiting requests (up to ``max_batch``) go through it as one batch. Nothing waits on a
timer: a lone request runs at once, and under load the batch grows by itself with the
number of requests that arrived during the previous call. The network runs in a worker
thread, so the event loop keeps reading and parsing requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import torch


class MicroBatcher:
    """``await batcher.run(*tensors)`` -> the rows of ``function(*batched)`` for them.

    ``function`` maps tensors (N, ...) to one tensor (N, ...); each request's tensors
    are concatenated along dim 0 with the others' and its own rows are cut back out.
    """

    def __init__(self, function: Callable[..., torch.Tensor], max_batch: int = 256) -> None:
        self.function, self.max_batch = function, max_batch
        self._queue: list[tuple[Sequence[torch.Tensor], asyncio.Future]] = []
        self._running = False
        self.calls = 0  # network calls made, for the metadata endpoint and the tests
        self.rows = 0

    async def run(self, *tensors: torch.Tensor) -> torch.Tensor:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((tensors, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, taken = [], 0
                while self._queue and (not batch or
                                       taken + len(self._queue[0][0][0]) <= self.max_batch):
                    item = self._queue.pop(0)
                    batch.append(item)
                    taken += len(item[0][0])
                await self._call(batch)
        finally:
            self._running = False

    async def _call(self, batch: list[tuple[Sequence[torch.Tensor], Any]]) -> None:
        joined = [torch.cat(parts) for parts in zip(*(tensors for tensors, _ in batch))]
        try:
            output = await asyncio.to_thread(self.function, *joined)
        except Exception as error:  # every waiting request gets the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        self.calls += 1
        self.rows += len(output)
        start = 0
        for tensors, future in batch:
            rows = len(tensors[0])
            if not future.done():  # a client that hung up cancelled its future
                future.set_result(output[start:start + rows])
            start += rows
