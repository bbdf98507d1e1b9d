"""The RaTE analyzer's caches (phrase vectors, sentence spans) and token-count batching (tiny random models built here).

A cached vector must be the very vector a fresh computation gives; `unmasked_mean` (batch-dependent)
must never be cached; NER spans must not depend on how reports are batched; a sentence is tagged
once per process.
"""
import numpy as np
import pytest

from rewards.entities.rate_ner import RateAnalyzer, tagged_sentences

PHRASES = ["pleural effusion", "heart", "right lower lobe airspace opacity", "heart", "lungs"]


def counting(analyzer: RateAnalyzer) -> list[int]:
    """Records the batch size of every embedder pass."""
    passes: list[int] = []
    encode = analyzer._encode

    def recorded(encoded, rows):
        passes.append(len(rows))
        return encode(encoded, rows)

    analyzer._encode = recorded
    return passes


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_cache_hit_is_bit_identical_to_a_fresh_computation(rate_dirs, pooling):
    cached = RateAnalyzer(*rate_dirs, device="cpu", pooling=pooling, embed_max_length=30)
    fresh = RateAnalyzer(*rate_dirs, device="cpu", pooling=pooling, embed_max_length=30, embed_cache_size=0)
    passes = counting(cached)
    first = cached.embed(PHRASES)
    assert passes == [4] and len(cached.embed_cache) == 4  # "heart" twice in the call, encoded once
    np.testing.assert_array_equal(first, fresh.embed(PHRASES))
    again = cached.embed(list(reversed(PHRASES)))
    assert passes == [4] and cached.embed_cache.hits == 4  # each distinct phrase from the cache, no model pass
    np.testing.assert_array_equal(again, first[::-1])
    np.testing.assert_array_equal(first[1], first[3])
    assert len(fresh.embed_cache) == 0


def test_only_unseen_phrases_reach_the_model(rate_dirs):
    analyzer = RateAnalyzer(*rate_dirs, device="cpu")
    passes = counting(analyzer)
    analyzer.embed(PHRASES[:2])
    mixed = analyzer.embed(["heart", "cardiomegaly", "pleural effusion"])
    assert passes == [2, 1]
    alone = RateAnalyzer(*rate_dirs, device="cpu", embed_cache_size=0).embed(["cardiomegaly"])
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-6)  # masked mean: the batch does not matter


def test_unmasked_mean_is_never_cached(rate_dirs):
    analyzer = RateAnalyzer(*rate_dirs, device="cpu", pooling="unmasked_mean")
    passes = counting(analyzer)
    batch = analyzer.embed(PHRASES)
    alone = analyzer.embed(["heart"])
    assert passes == [5, 1] and len(analyzer.embed_cache) == 0
    assert not np.allclose(batch[1], alone[0], atol=1e-4)  # padding inside the batch changes the mean, as upstream


def test_analyses_with_and_without_cache_agree(rate_dirs, iu_findings):
    reports = iu_findings[40:52]
    cached = RateAnalyzer(*rate_dirs, device="cpu", batch_size=4)
    cached.analyze(reports[:6])  # warm the cache with the entities of half the reports
    warm = cached.analyze(reports)
    plain = RateAnalyzer(*rate_dirs, device="cpu", batch_size=5, embed_cache_size=0).analyze(reports)
    assert cached.embed_cache.hits > 0
    for with_cache, without in zip(warm, plain):
        assert with_cache.entities == without.entities
        np.testing.assert_allclose(with_cache.embeddings, without.embeddings, atol=1e-6)


def test_ner_spans_do_not_depend_on_batching(rate_dirs, iu_findings):
    texts = [iu_findings[i] for i in (3, 90, 17, 250, 8)] + [""]
    analyzer = RateAnalyzer(*rate_dirs, device="cpu", batch_size=2)
    batched = analyzer.tag(texts)
    assert batched == [analyzer.tag([text])[0] for text in texts]
    assert batched[-1] == [] and sum(map(len, batched)) > 0


def test_each_sentence_is_tagged_once(rate_dirs, iu_findings):
    analyzer = RateAnalyzer(*rate_dirs, device="cpu", batch_size=4, ner_unit="sentence")
    sequences: list[int] = []
    tag_sequences = analyzer._tag_sequences
    analyzer._tag_sequences = lambda texts: sequences.append(len(texts)) or tag_sequences(texts)
    reports = iu_findings[:16]
    first = analyzer.analyze(reports)
    located = [sentence for r in reports for _, sentence in tagged_sentences(r)]
    assert sequences == [len(set(located))] < [len(located)]  # IU-XRay reports share sentences
    second = analyzer.analyze(reports[::-1])
    assert sequences[1:] == [0]  # every sentence came from the span cache
    uncached = RateAnalyzer(*rate_dirs, device="cpu", batch_size=4, ner_unit="sentence", span_cache_size=0).analyze(reports)
    for a, b, c in zip(first, second[::-1], uncached):
        assert a.entities == b.entities == c.entities
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
