"""Helpers every model pass shares (rewards and the entity analyzer): length-sorted batches, an LRU
cache, and telling a Hugging Face hub id from a local path.

Pure Python, no torch: cheap to import from the pure modules and from `rewards`.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Generic, Hashable, Iterator, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_id_shaped(location: str | os.PathLike) -> bool:
    """Shaped owner/name and no local path (the hub or its local cache may resolve it).

    "models/RaTE-NER-Deberta" is taken for a local path when ./models exists, so a mistyped model
    dir fails at once with "does not exist" instead of trying the network.
    """
    text = str(location)
    if not _HUB_ID.fullmatch(text):
        return False
    path = Path(text).expanduser()
    return not path.exists() and not Path(path.parts[0]).is_dir()


def is_hub_id(location: str | os.PathLike) -> bool:
    """A hub id we may download from: `hub_id_shaped` and the hub not switched off (HF_HUB_OFFLINE)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return not offline and hub_id_shaped(location)


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Input indices in batches of at most `batch_size`, shortest first.

    Similar lengths share a batch, so padding (pure wasted compute on CPU) is minimal; callers
    write each result back to its index, which restores the input order.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    size = max(1, batch_size)
    for start in range(0, len(order), size):
        yield order[start:start + size]


class LRUCache(Generic[K, V]):
    """A small ordered-dict LRU with hit/miss counters (benchmarks and tests read them); capacity 0 stores nothing."""

    def __init__(self, capacity: int):
        self.capacity = max(0, int(capacity))
        self._items: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key: K, value: V) -> None:
        if self.capacity == 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[K]:
        """The cached keys, least recently used first."""
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.hits = self.misses = 0
