"""Entity analysis of reports: the data types and the analyzer interface (plain data, no model).

Backends (RaTE-NER + BioLORD, offline lexicon; `backends.build_analyzer`) return the same
`ReportAnalysis`, so the edit logic and the RaTE-style rewards cannot tell them apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

ABNORMALITY = "ABNORMALITY"
NON_ABNORMALITY = "NON-ABNORMALITY"
DISEASE = "DISEASE"
NON_DISEASE = "NON-DISEASE"
ANATOMY = "ANATOMY"
ENTITY_TYPES: tuple[str, ...] = (ABNORMALITY, NON_ABNORMALITY, DISEASE, NON_DISEASE, ANATOMY)
NEGATED_TYPES = frozenset({NON_ABNORMALITY, NON_DISEASE})


@dataclass(frozen=True)
class Entity:
    text: str  # surface text as found in the report
    type: str  # one of ENTITY_TYPES
    start: int  # character span in ReportAnalysis.text
    end: int
    sentence: int  # index into ReportAnalysis.sentences (first sentence containing the text), -1 if none

    @property
    def negated(self) -> bool:
        return self.type in NEGATED_TYPES


@dataclass(frozen=True)
class ReportAnalysis:
    text: str  # normalised report text
    sentences: tuple[str, ...]
    entities: tuple[Entity, ...]
    # (len(entities), dim) float32, rows L2-normalised so cosine = dot product
    embeddings: np.ndarray = field(repr=False, compare=False)


class EntityAnalyzer(Protocol):
    """Batched: one call analyses many reports (NER and embedding passes are batched inside)."""

    name: str

    def analyze(self, reports: Sequence[str]) -> list[ReportAnalysis]: ...


def sentence_of(entity_text: str, sentences: Sequence[str]) -> int:
    """Index of the first sentence containing the entity's lower-cased text, -1 if none (docs/algorithm.md §2).

    The reference drops entities whose text is in no sentence (e.g. a span across a sentence
    boundary); analyzers keep them with -1 for the rewards, and the edit engine ignores them.
    """
    needle = entity_text.lower()
    for index, sentence in enumerate(sentences):
        if needle in sentence.lower():
            return index
    return -1
