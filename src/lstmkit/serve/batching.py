"""Batching concurrent requests: many small network calls become one.

Requests wait in a queue; at the event loop's next turn, all waiting requests (up to
``max_batch``) go through the network as one batch. Nothing waits on a timer: a lone
request runs at once, and under load the batch grows by itself with the number of
requests that arrived together (or during the previous call).

The call runs on the event loop, after letting the requests already read join the
batch: a hop to a worker thread cost more than it saved, for a streaming step (tens
of microseconds) as for a forecaster's network (half a millisecond, during which
torch releases Python's lock, so a thread reading the next request's input goes on).
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
        self.calls = 0  # network calls made and rows they took, for tests and benchmarks
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
            await asyncio.sleep(0)  # the handlers already running reach run() too
            while self._queue:
                batch, taken = [], 0
                while self._queue and (not batch or
                                       taken + len(self._queue[0][0][0]) <= self.max_batch):
                    item = self._queue.pop(0)
                    batch.append(item)
                    taken += len(item[0][0])
                self._call(batch)
        finally:
            self._running = False

    def _call(self, batch: list[tuple[Sequence[torch.Tensor], Any]]) -> None:
        joined = [torch.cat(parts) for parts in zip(*(tensors for tensors, _ in batch))]
        try:
            output = self.function(*joined)
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


class StepBatcher:
    """One LSTM step for many streams at once: ``await batcher.step(x_t, state)`` ->
    (output (1, P), head (1, K) or None, new state), for x_t (1, I) and state
    (h (L, 1, P), c (L, 1, H)) or None (zeros).

    ``step`` is a layer's streaming step (lstmkit.nn.LSTM.streaming_step); ``head``, if
    given, maps the batch's outputs (B, P) to (B, K) in the same call (a language
    model's next-token guesses). At batch 1 a step is bound by reading the weights, so
    B streams stepped together cost little more than one.
    """

    def __init__(self, step: Callable, num_layers: int, hidden_size: int, output_size: int,
                 head: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.step_function, self.head = step, head
        self.L, self.H, self.P = num_layers, hidden_size, output_size
        self.batcher = MicroBatcher(self._step_rows)

    async def step(self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None,
                              tuple[torch.Tensor, torch.Tensor]]:
        L, H, P = self.L, self.H, self.P
        if state is None:
            state = (x_t.new_zeros(L, 1, P), x_t.new_zeros(L, 1, H))
        # a stream's state as one row: (L, 1, P) -> (1, L * P), batched along rows
        row = await self.batcher.run(x_t, state[0].reshape(1, L * P), state[1].reshape(1, L * H))
        h, c, output, head = row.split([L * P, L * H, P, row.shape[1] - L * (P + H) - P], dim=1)
        return output, head if self.head else None, (h.view(L, 1, P), c.view(L, 1, H))

    def _step_rows(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        B, L = len(x), self.L
        state = (h.view(B, L, self.P).transpose(0, 1).contiguous(),  # (L, B, P)
                 c.view(B, L, self.H).transpose(0, 1).contiguous())  # (L, B, H)
        output, (h, c) = self.step_function(x, state)
        parts = [h.transpose(0, 1).reshape(B, -1), c.transpose(0, 1).reshape(B, -1), output]
        if self.head is not None:
            parts.append(self.head(output))
        return torch.cat(parts, dim=1)  # (B, L*P + L*H + P + K)
