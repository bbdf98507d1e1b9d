"""Reference-side LRU cache and rollout de-duplication in front of an analyzer."""
import pytest

from rewards.entities.cache import CachedAnalyzer
from templates.report import sentence_key
from rewards.entities.lexicon import LexiconAnalyzer


class CountingAnalyzer(LexiconAnalyzer):
    def __init__(self):
        super().__init__()
        self.calls: list[list[str]] = []

    def analyze(self, reports):
        self.calls.append(list(reports))
        return super().analyze(reports)


def test_rollouts_deduplicated_and_results_identical(iu_findings):
    inner = CountingAnalyzer()
    cached = CachedAnalyzer(inner)
    rollouts = [iu_findings[0], iu_findings[1], iu_findings[0] + " <|im_end|>", iu_findings[0].replace(" ", "  ")]
    results = cached.analyze(rollouts)
    assert inner.calls == [[sentence_key(iu_findings[0]), sentence_key(iu_findings[1])]]
    direct = LexiconAnalyzer().analyze(rollouts)
    for got, want in zip(results, direct):
        assert got == want and (got.embeddings == want.embeddings).all()
    assert cached.stats.rollouts == 4 and cached.stats.rollouts_analysed == 2


def test_references_cached_across_calls_with_lru(iu_findings):
    inner = CountingAnalyzer()
    cached = CachedAnalyzer(inner, max_references=2)
    group = [iu_findings[5]] * 5  # one prompt, G = 5
    cached.analyze_references(group)
    cached.analyze_references(group)  # next epoch
    assert len(inner.calls) == 1 and cached.stats.reference_hits == 9 and cached.stats.reference_misses == 1
    cached.analyze_references([iu_findings[6], iu_findings[7], iu_findings[5]])  # evicts 5 then re-adds it
    assert inner.calls[-1] == [sentence_key(iu_findings[6]), sentence_key(iu_findings[7])]
    cached.analyze_references([iu_findings[5]])
    assert len(inner.calls) == 2  # 5 was kept: it was used last in the previous call
    cached.analyze_references([iu_findings[6]])
    assert len(inner.calls) == 3  # 6 was evicted (least recently used)


def test_pairs_and_empty_inputs(iu_findings):
    cached = CachedAnalyzer(LexiconAnalyzer(), max_references=0)
    gens, refs = cached.analyze_pairs(["", iu_findings[0]], [iu_findings[1], iu_findings[1]])
    assert gens[0].text == "" and refs[0] is refs[1]
    assert cached.analyze([]) == [] and cached.analyze_references([]) == []
    with pytest.raises(ValueError):
        cached.analyze_pairs(["a"], [])
    with pytest.raises(ValueError):
        CachedAnalyzer(LexiconAnalyzer(), max_references=-1)
