"""A micro-batcher: concurrent single-item requests become one batched call.

Callers in any thread ``submit`` an item and get a :class:`concurrent.futures.Future`; one
worker thread takes the first waiting item, gathers more until ``max_batch_size`` items or
``max_wait_ms`` have passed, and runs the batch function once for all of them. Async servers
await the future through :func:`asyncio.wrap_future`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = 16
    max_wait_ms: float = 5.0


class MicroBatcher(Generic[T, R]):
    """Run ``fn(items) -> results`` (same length, same order) on batches of submitted items.

    If ``fn`` raises, every item of that batch gets the exception; the worker keeps going.
    """

    def __init__(
        self,
        fn: Callable[[Sequence[T]], Sequence[R]],
        max_batch_size: int = 16,
        max_wait_ms: float = 5.0,
        name: str = "micro-batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self._queue: queue.Queue[object] = queue.Queue()
        self._closed = False
        self.batches = 0  # how many batches ran, and how many items: for metrics and tests
        self.items = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        if self._closed:
            raise RuntimeError("the micro-batcher is closed")
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future

    def __call__(self, item: T, timeout: float | None = None) -> R:
        """Submit and wait for the result (re-raises the batch's exception)."""
        return self.submit(item).result(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish what is queued, then stop the worker."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _gather(self) -> tuple[list[tuple[T, Future[R]]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]  # type: ignore[list-item]
        deadline = time.monotonic() + self.max_wait_s
        stop = False
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                # Take whatever is already queued even after the deadline: it costs no wait.
                if remaining > 0:
                    nxt = self._queue.get(timeout=remaining)
                else:
                    nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                stop = True
                break
            batch.append(nxt)  # type: ignore[arg-type]
        return batch, stop  # type: ignore[return-value]

    def _run(self) -> None:
        while True:
            batch, stop = self._gather()
            live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
            if live:
                self.batches += 1
                self.items += len(live)
                try:
                    results = self.fn([item for item, _ in live])
                    if len(results) != len(live):
                        raise RuntimeError("batch function returned the wrong number of results")
                except BaseException as exc:  # one bad batch must not stop the worker
                    for _, fut in live:
                        fut.set_exception(exc)
                else:
                    for (_, fut), res in zip(live, results, strict=True):
                        fut.set_result(res)
            if stop:
                return
