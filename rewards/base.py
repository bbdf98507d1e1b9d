"""The scorer protocol every metric implements (per-pair values + components, corpus aggregates)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence


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
