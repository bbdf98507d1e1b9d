"""Caching and de-duplication in front of any `EntityAnalyzer` (NER is the expensive part).

* Reference side: the gold report's analysis is reused by all G rollouts of a prompt and across
  epochs (LRU, `max_references` entries).
* Rollout side: identical rollouts (common late in training) are analysed once per call.

Texts are keyed by `templates.report.sentence_key`, which fixes both the normalised text and the
sentences, so two texts with the same key have the same analysis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rewards.entities.types import EntityAnalyzer, ReportAnalysis
from rewards.batching import LRUCache, lookup_or_compute
from templates.report import sentence_key


@dataclass
class CacheStats:
    reference_hits: int = 0
    reference_misses: int = 0
    rollouts: int = 0
    rollouts_analysed: int = 0  # after de-duplication


class CachedAnalyzer:
    """Wraps an analyzer; `analyze` de-duplicates, `analyze_references` also caches (LRU)."""

    def __init__(self, analyzer: EntityAnalyzer, max_references: int = 8192):
        if max_references < 0:
            raise ValueError(f"max_references must be >= 0, got {max_references}")
        self.analyzer = analyzer
        self.name = analyzer.name
        self.max_references = max_references
        self.stats = CacheStats()
        self._references: LRUCache[str, ReportAnalysis] = LRUCache(max_references)

    def analyze(self, reports: Sequence[str]) -> list[ReportAnalysis]:
        """Analyses in input order; each distinct text is sent to the analyzer once."""
        keys = [sentence_key(r) for r in reports]
        by_key, analysed = lookup_or_compute(keys, self.analyzer.analyze)
        self.stats.rollouts += len(keys)
        self.stats.rollouts_analysed += len(analysed)
        return [by_key[k] for k in keys]

    def analyze_references(self, references: Sequence[str]) -> list[ReportAnalysis]:
        """Like `analyze`, but analyses are kept across calls (LRU of `max_references`)."""
        keys = [sentence_key(r) for r in references]
        known, missing = lookup_or_compute(keys, self.analyzer.analyze, (self._references,))
        self.stats.reference_misses += len(missing)
        self.stats.reference_hits += len(keys) - len(missing)
        for key in dict.fromkeys(keys):  # recency follows this call's order
            self._references.put(key, known[key])
        return [known[k] for k in keys]

    def analyze_pairs(
        self, generated: Sequence[str], references: Sequence[str]
    ) -> tuple[list[ReportAnalysis], list[ReportAnalysis]]:
        if len(generated) != len(references):
            raise ValueError(f"{len(generated)} generated reports but {len(references)} references")
        return self.analyze(generated), self.analyze_references(references)
