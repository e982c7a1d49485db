"""Bounded, thread-safe caches: every per-process cache in vltools has a cap.

`LRUCache` is a plain least-recently-used map with a size cap (entries). `ModelCache` holds
loaded backends of one kind (text encoders, LLMs, CLIP models) keyed by (spec, device), at most
``settings.max_loaded_models`` of them: a client naming model after model evicts the least
recently used one instead of growing the process without limit. A model being loaded is loaded
once even when several threads ask for it at the same time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A thread-safe mapping that keeps at most ``maxsize`` entries, dropping the least recently used."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Store ``value``; returns the entries evicted to make room."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            return self._trim()

    def resize(self, maxsize: int) -> list[tuple[K, V]]:
        """Change the cap (evicting at once if it shrank); returns the evicted entries."""
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        with self._lock:
            self.maxsize = maxsize
            return self._trim()

    def _trim(self) -> list[tuple[K, V]]:
        evicted = []
        while len(self._data) > self.maxsize:
            evicted.append(self._data.popitem(last=False))
        return evicted

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def keys(self) -> list[K]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())


class ModelCache(Generic[V]):
    """Loaded backends of one kind by (spec, device), capped at a number of models.

    ``get_or_load(key, loader, cap)`` returns the cached model or calls ``loader()`` once (other
    threads asking for the same key wait for it; different keys load in parallel). A model evicted
    while a caller still uses it stays alive until that caller drops it.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lru: LRUCache[Hashable, V] = LRUCache(maxsize=1_000_000)
        self._loading: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, loader: Callable[[], V], cap: int) -> V:
        hit = self._lru.get(key)
        if hit is not None:
            return hit
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            hit = self._lru.get(key)
            if hit is not None:
                return hit
            try:
                model = loader()
                self._lru.resize(max(1, cap))
                self._lru.put(key, model)
            finally:  # after the put: a thread arriving now finds the model, not an empty slot
                with self._lock:
                    self._loading.pop(key, None)
            return model

    def keys(self) -> list[Hashable]:
        """Keys of the loaded models, least recently used first."""
        return self._lru.keys()

    def clear(self) -> None:
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, key: object) -> bool:
        return key in self._lru
