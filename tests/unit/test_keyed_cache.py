"""KeyedCache builds one value per key, even when threads ask at the same moment."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from skinscan_common.cache import KeyedCache


def test_concurrent_first_use_builds_once() -> None:
    cache: KeyedCache[object] = KeyedCache()
    builds: list[str] = []
    start = threading.Barrier(8)

    def build() -> object:
        builds.append("built")
        time.sleep(0.01)  # widen the window in which a racing thread could build a second one
        return object()

    def ask(_: int) -> object:
        start.wait()
        return cache.get("db-url", build)

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(ask, range(8)))
    assert builds == ["built"]
    assert all(v is values[0] for v in values)


def test_keys_are_separate_and_clear_closes_each_value() -> None:
    cache: KeyedCache[list[str]] = KeyedCache()
    a = cache.get("a", lambda: ["a"])
    b = cache.get("b", lambda: ["b"])
    assert a is not b and cache.get("a", lambda: ["other"]) is a
    closed: list[list[str]] = []
    cache.clear(close=closed.append)
    assert closed == [a, b]
    assert cache.get("a", lambda: ["new"]) == ["new"]
