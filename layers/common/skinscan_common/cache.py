"""A thread-safe "build once per key" cache for process-wide clients.

Database engines, object stores and endpoint clients are costly to build and safe to share,
so a process (a Lambda container between invocations, or the local server) keeps one per
configuration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class KeyedCache(Generic[V]):
    """Values built on first use of their key and reused after that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Hashable, V] = {}

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value for ``key``, built with ``build()`` the first time (once, under a lock)."""
        with self._lock:
            if key not in self._items:
                self._items[key] = build()
            return self._items[key]

    def clear(self, close: Callable[[V], None] | None = None) -> None:
        """Forget every value, calling ``close`` on each first (tests, shutdown)."""
        with self._lock:
            if close is not None:
                for value in self._items.values():
                    close(value)
            self._items.clear()
