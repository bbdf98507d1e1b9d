"""The scorer protocol every metric implements (per-pair values + components, corpus aggregates).

Model-based metrics share one shape: annotate each report (labels, a graph, entities), then
compare two annotations. `AnnotatingScorer` does the bookkeeping once for all of them: text
normalisation, one batched `annotate` call per `score`, identical hypotheses annotated once,
and a bounded LRU cache of reference annotations (all G rollouts of a prompt share one
reference, and the same references come back every epoch).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

from rewards.batching import LRUCache, lookup_or_compute
from templates.report import sentence_key

A = TypeVar("A")


@dataclass
class ScoreResult:
    """Per-pair scores aligned 1:1 with the inputs; every value finite."""

    values: list[float]  # the metric's headline number per pair (e.g. partial F1)
    components: dict[str, list[float]] = field(default_factory=dict)  # e.g. {"precision": [...]}


class Scorer(ABC):
    """A metric over (hypothesis, reference) report pairs.

    `name` is the key written to score/eval outputs (e.g. "chexbert_micro_f1_14").
    """

    name: str

    @abstractmethod
    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> ScoreResult: ...

    def corpus(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
        """Corpus-level aggregates for evaluation; mean of the per-pair values unless overridden."""
        result = self.score(hyps, refs)
        return {self.name: sum(result.values) / len(result.values) if result.values else 0.0}


def finite(value: float) -> float:
    """NaN/inf (never expected, but a reward must not poison a batch) become 0."""
    value = float(value)
    return value if math.isfinite(value) else 0.0


def prf(hits: int, predicted: int, gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts; 0 wherever a denominator is 0."""
    precision = hits / predicted if predicted else 0.0
    recall = hits / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def check_pairs(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} references; pairs must align 1:1")


class AnnotatingScorer(Scorer, Generic[A]):
    """Scores pairs by annotating distinct texts once (batched) and comparing annotations.

    Subclasses set `name`, `headline` (the component that is the per-pair value), and implement
    `annotate` (a batch of distinct texts, each its `sentence_key`: sentences one per line) and `compare` (components of one pair).
    """

    headline: str

    def __init__(self, cache_size: int = 4096):
        self.cache: LRUCache[str, A] = LRUCache(cache_size)  # references: recur for all G rollouts and every epoch
        self.recent: LRUCache[str, A] = LRUCache(cache_size)  # hypotheses: the same rollouts scored by another ORM

    @abstractmethod
    def annotate(self, texts: list[str]) -> list[A]: ...

    @abstractmethod
    def compare(self, hyp: A, ref: A) -> dict[str, float]: ...

    def annotations(self, hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[A], list[A]]:
        """Annotations of both sides; one `annotate` call for all distinct texts no cache holds."""
        check_pairs(hyps, refs)
        hyp_keys = [sentence_key(h) for h in hyps]
        ref_keys = [sentence_key(r) for r in refs]
        known, _ = lookup_or_compute(ref_keys + hyp_keys, self.annotate, (self.cache, self.recent))
        for key in dict.fromkeys(ref_keys):
            self.cache.put(key, known[key])
        for key in dict.fromkeys(hyp_keys):
            self.recent.put(key, known[key])
        return [known[k] for k in hyp_keys], [known[k] for k in ref_keys]

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> ScoreResult:
        hyp_ann, ref_ann = self.annotations(hyps, refs)
        rows = [{k: finite(v) for k, v in self.compare(h, r).items()} for h, r in zip(hyp_ann, ref_ann)]
        keys = list(rows[0]) if rows else []
        return ScoreResult(values=[row[self.headline] for row in rows], components={k: [row[k] for row in rows] for k in keys})
