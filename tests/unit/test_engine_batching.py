"""The micro-batcher groups concurrent requests and survives failing batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from skinscan_engine.batching import MicroBatcher


def test_concurrent_items_share_batches() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def double(items: Sequence[int]) -> list[int]:
        gate.wait(5)  # hold the first batch so the rest queue up behind it
        sizes.append(len(items))
        return [2 * i for i in items]

    batcher = MicroBatcher(double, max_batch_size=4, max_wait_ms=50)
    futures = [batcher.submit(i) for i in range(10)]
    gate.set()
    assert [f.result(5) for f in futures] == [2 * i for i in range(10)]
    assert max(sizes) <= 4
    assert sum(sizes) == 10
    assert len(sizes) < 10  # some batching happened
    assert batcher.items == 10 and batcher.batches == len(sizes)
    batcher.close()


def test_waits_at_most_max_wait_for_company() -> None:
    batcher = MicroBatcher(lambda items: list(items), max_batch_size=64, max_wait_ms=1)
    # A lone item is served even though the batch never fills.
    assert batcher(7, timeout=5) == 7
    batcher.close()


def test_failing_batch_fails_its_items_and_the_worker_goes_on() -> None:
    def maybe_fail(items: Sequence[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return list(items)

    batcher = MicroBatcher(maybe_fail, max_batch_size=1, max_wait_ms=0)
    with pytest.raises(ValueError, match="negative"):
        batcher(-1, timeout=5)
    assert batcher(3, timeout=5) == 3
    batcher.close()


def test_wrong_result_count_is_an_error() -> None:
    batcher = MicroBatcher(lambda items: [], max_batch_size=2, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="wrong number"):
        batcher(1, timeout=5)
    batcher.close()


def test_close_finishes_queued_work_then_refuses() -> None:
    def slow(items: Sequence[int]) -> list[int]:
        time.sleep(0.01)
        return list(items)

    batcher = MicroBatcher(slow, max_batch_size=2, max_wait_ms=0)
    futures = [batcher.submit(i) for i in range(5)]
    batcher.close()
    assert [f.result(5) for f in futures] == list(range(5))
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)


def test_rejects_bad_size() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: list(items), max_batch_size=0)
