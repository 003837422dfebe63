"""Dynamic batching: gathering inputs from concurrent requests into batches for one worker thread.

Requests put their inputs in one queue and await their results. A single task takes inputs off the
queue in batches of up to ``max_batch`` and runs each batch on one dedicated thread (the pipeline
never runs on the event loop, and never on two threads at once). While a batch runs, new inputs
queue up and form the next batch.

How long to wait for company: when the thread is free, the batcher waits at most ``max_wait_s``
after the oldest queued input arrived, and only while fewer inputs are queued than the previous
batch held (the clients just answered are likely to send again). A lone client therefore never
waits; under load, batches form at the size the load sustains.

>>> batcher = Batcher(run, max_batch=32, max_wait_s=0.005, queue_limit=256)   # doctest: +SKIP
>>> results = await batcher.submit([x1, x2])                                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

__all__ = ["Batcher", "QueueFull"]


class QueueFull(Exception):
    """The queue holds ``queue_limit`` inputs already; the request should be retried later."""


class _Pending:
    __slots__ = ("value", "future", "arrived")

    def __init__(self, value: Any, future: "asyncio.Future[Any]", arrived: float):
        self.value, self.future, self.arrived = value, future, arrived


class Batcher:
    """Queues inputs and runs them in batches through ``run`` (a list of inputs -> a list of results).

    ``on_batch(size, seconds)`` and ``on_depth(depth)`` report to the metrics; ``initializer`` runs
    first on the pipeline thread. Start with
    :meth:`start` inside the running event loop; :meth:`stop` waits for the batch in progress.
    """

    def __init__(self, run: Callable[[list[Any]], list[Any]], *, max_batch: int, max_wait_s: float,
                 queue_limit: int, on_batch: Callable[[int, float], None] | None = None,
                 on_depth: Callable[[int], None] | None = None,
                 initializer: Callable[[], None] | None = None):
        self.run, self.max_batch, self.max_wait_s, self.queue_limit = run, max_batch, max_wait_s, queue_limit
        self._on_batch, self._on_depth = on_batch, on_depth
        self._queue: collections.deque[_Pending] = collections.deque()
        self._arrival: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_size = 1
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-pipeline",
                                           initializer=initializer)

    @property
    def depth(self) -> int:
        """Inputs waiting for a batch (not counting the batch being run)."""
        return len(self._queue)

    def start(self) -> None:
        self._arrival = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="workbench-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, values: Sequence[Any]) -> list[Any]:
        """The results for ``values``, in order, once their batches have run.

        Raises :class:`QueueFull` (nothing queued) when they do not fit. Cancelling the caller
        (a timeout) withdraws inputs not yet taken into a batch.
        """
        if len(self._queue) + len(values) > self.queue_limit:
            raise QueueFull(f"the queue holds {len(self._queue)} of {self.queue_limit} inputs")
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        pending = [_Pending(v, loop.create_future(), now) for v in values]
        self._queue.extend(pending)
        self._report_depth()
        assert self._arrival is not None, "Batcher.start() was not called"
        self._arrival.set()
        try:
            if len(pending) == 1:
                return [await pending[0].future]
            return list(await asyncio.gather(*(p.future for p in pending)))
        finally:
            for p in pending:
                p.future.cancel()  # a no-op for answered ones; marks the others to be skipped

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._arrival is not None
        while True:
            self._drop_cancelled()
            if not self._queue:
                self._arrival.clear()
                await self._arrival.wait()
                continue
            wanted = min(self._last_size, self.max_batch)
            deadline = self._queue[0].arrived + self.max_wait_s
            while len(self._queue) < wanted:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._arrival.clear()
                try:
                    await asyncio.wait_for(self._arrival.wait(), remaining)
                except asyncio.TimeoutError:
                    break
                self._drop_cancelled()
            batch: list[_Pending] = []
            while self._queue and len(batch) < self.max_batch:
                p = self._queue.popleft()
                if not p.future.cancelled():
                    batch.append(p)
            self._report_depth()
            if not batch:
                continue
            self._last_size = len(batch)
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self.executor, self.run, [p.value for p in batch])
            except Exception as exc:  # ``run`` answers per input; this is a fault of its own, for all of them
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - started)
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(result)

    def _drop_cancelled(self) -> None:
        while self._queue and self._queue[0].future.cancelled():
            self._queue.popleft()

    def _report_depth(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._queue))
