"""What every model pass shares (scorers and the entity analyzer): length-sorted batches, an LRU cache,
and de-duplicated, cached lookups (`lookup_or_compute`).

Pure Python, no torch: cheap to import.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, Iterator, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


def lookup_or_compute(
    keys: Sequence[K], compute: Callable[[list[K]], Sequence[V]], caches: Sequence[LRUCache[K, V]] = ()
) -> tuple[dict[K, V], list[K]]:
    """The value of every distinct key, and the keys that had to be computed.

    A key comes from the first cache holding it; all the others are computed in one `compute`
    call (distinct, first-seen order: batched model passes stay batched). Storing results is the
    caller's choice (references and hypotheses are kept differently).
    """
    known: dict[K, V] = {}
    for key in dict.fromkeys(keys):
        for cache in caches:
            found = cache.get(key)
            if found is not None:
                known[key] = found
                break
    missing = [key for key in dict.fromkeys(keys) if key not in known]
    if missing:
        computed = compute(missing)
        if len(computed) != len(missing):
            raise RuntimeError(f"{getattr(compute, '__qualname__', compute)} returned {len(computed)} results for {len(missing)} inputs")
        known.update(zip(missing, computed))
    return known, missing
