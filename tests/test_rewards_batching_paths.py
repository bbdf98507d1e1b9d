"""Length-sorted batching and the LRU cache shared by every model pass (rewards/batching.py)."""
import pytest

from rewards.batching import LRUCache, length_batches
from rewards.paths import hub_id_shaped, is_hub_id


def padded_tokens(lengths, batches):
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def test_length_batches_cover_every_index_once_shortest_first(iu_findings):
    lengths = [len(text.split()) for text in iu_findings[:101]]
    batches = list(length_batches(lengths, 8))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(1 <= len(batch) <= 8 for batch in batches) and len(batches) == 13
    assert all(max(lengths[i] for i in a) <= min(lengths[i] for i in b) for a, b in zip(batches, batches[1:]))
    # the point of sorting: far less padding than batches in input order
    in_order = [list(range(i, min(i + 8, len(lengths)))) for i in range(0, len(lengths), 8)]
    assert padded_tokens(lengths, batches) < 0.8 * padded_tokens(lengths, in_order)


def test_length_batches_edge_cases():
    assert list(length_batches([], 4)) == []
    assert list(length_batches([3, 1, 2], 0)) == [[1], [2], [0]]  # batch size < 1 acts as 1
    assert list(length_batches([2, 1, 2, 1], 10)) == [[1, 3, 0, 2]]  # stable among equal lengths


def test_lru_cache_evicts_least_recently_used_and_counts():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("c") == 3 and len(cache) == 2
    assert cache.keys() == ["a", "c"]  # least recently used first
    assert (cache.hits, cache.misses) == (2, 1)
    cache.clear()
    assert len(cache) == 0 and (cache.hits, cache.misses) == (0, 0)


@pytest.mark.parametrize("capacity", [0, -3])
def test_lru_cache_without_capacity_stores_nothing(capacity):
    cache: LRUCache[str, int] = LRUCache(capacity)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0


def test_hub_ids_and_local_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert is_hub_id("Angelakeke/RaTE-NER-Deberta")
    (tmp_path / "models").mkdir()
    assert not is_hub_id("models/RaTE-NER-Deberta")  # a mistyped dir under an existing folder is a local path
    assert not is_hub_id(str(tmp_path / "x")) and not is_hub_id("./a/b") and not is_hub_id("a/b/c")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no download, but the local hub cache may still resolve it
    assert not is_hub_id("Angelakeke/RaTE-NER-Deberta") and hub_id_shaped("Angelakeke/RaTE-NER-Deberta")
