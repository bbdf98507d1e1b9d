"""RaTEScore on our entity analyzers, with the upstream `ratescore` formula and no misalignment.

Formula (RaTEScore `utils.compute` + `RaTEScore.compute_score`): for each entity of one side,
take the most similar entity of the other side (cosine of the embeddings); average
`cos * W[type_src, type_best] * p` weighted by `W` (p = the negation weight when the pair has
opposite polarity, else 1). Upstream calls the reference->candidate direction "precision" and
candidate->reference "recall"; the score is their harmonic mean, 0 if both are 0, and 0.5 when
either report has no entities. W and p come from `rewards.entities.affinity` (the single
source shared with the edit engine): the paper's values (ratescore 0.5.0, negation weight
0.3612); ratescore 0.6.0's default matrix uses 0.8717 and scores differ by up to 0.13. The parity
goldens run 0.6.0's formula code with these values.

Differences from the package, on purpose:
* upstream drops texts without a sentence of >= 3 characters before NER, which shifts every
  later score onto the wrong pair (4 pairs in, 2 scores out); here such a text keeps its slot
  and, as upstream intends, has no entities (-> 0.5);
* NER runs per sentence as upstream (the analyzer's ``ner_unit="sentence"``, built so by
  `rewards.build_scorers`), but sentences come from `split_sentences` instead of medspacy's
  PyRuSH; entity embeddings use the [CLS] vector with 30 tokens, as upstream;
* entity spans are decoded as the edit engine decodes them (`rate_ner.decode_bio`, text from
  character offsets); the package's token-based decoder gives the same entities for well-formed
  BIO tags and differs only on ill-formed ones (an `I-X` inside a `B-Y` span, a lone `I-X`).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from rewards.entities.types import EntityAnalyzer, ReportAnalysis
from rewards.entities.rate_ner import tagged_sentences
from templates.report import split_sentences
from rewards.entities.affinity import AFFINITY_MATRIX, NEGATION_WEIGHT, opposite_polarity_matrix, similarity_matrix, type_indices

from rewards.base import AnnotatingScorer

NO_ENTITY_SCORE = 0.5
RATE_EMBED_MAX_LENGTH = 30  # RaTEScore's max_length for entity phrases


def has_rate_sentence(text: str) -> bool:
    """RaTEScore only runs NER on sentences with a word and at least 3 characters."""
    return bool(tagged_sentences(text))


def directional_score(src_types: list[str], src_emb: np.ndarray, tgt_types: list[str], tgt_emb: np.ndarray,
                      min_cosine: float = -1.0) -> float:
    """RaTEScore's `compute(src, tgt)`: W-weighted mean of each src entity's best cosine (raised to
    `min_cosine`), penalised for negation."""
    cosine = similarity_matrix(src_emb, tgt_emb)
    best = cosine.argmax(axis=1)
    rows = np.arange(len(src_types))
    src_idx, tgt_idx = type_indices(src_types), type_indices(tgt_types)[best]
    weight = AFFINITY_MATRIX[src_idx, tgt_idx]
    penalty = np.where(opposite_polarity_matrix(src_types, tgt_types)[rows, best], NEGATION_WEIGHT, 1.0)
    total = weight.sum()
    return float((np.maximum(cosine[rows, best], min_cosine) * weight * penalty).sum() / total) if total != 0 else 0.0


def rate_scores(hyp: ReportAnalysis, ref: ReportAnalysis, min_cosine: float = -1.0) -> dict[str, float]:
    """Upstream's precision/recall/score; with `min_cosine=0` each is in [0, 1] (W and p are positive)."""
    if not hyp.entities or not ref.entities:
        return {"precision": NO_ENTITY_SCORE, "recall": NO_ENTITY_SCORE, "score": NO_ENTITY_SCORE}
    hyp_types, ref_types = [e.type for e in hyp.entities], [e.type for e in ref.entities]
    precision = directional_score(ref_types, ref.embeddings, hyp_types, hyp.embeddings, min_cosine)  # upstream's naming
    recall = directional_score(hyp_types, hyp.embeddings, ref_types, ref.embeddings, min_cosine)
    score = 2 * precision * recall / (precision + recall) if precision + recall != 0 else 0.0
    return {"precision": precision, "recall": recall, "score": score}


class RaTEScorer(AnnotatingScorer[ReportAnalysis]):
    """RaTEScore over any `EntityAnalyzer` (RaTE-NER + BioLORD: the metric; lexicon: the offline proxy)."""

    name = "ratescore"
    headline = "score"
    min_cosine = -1.0  # the metric's own signed cosine (upstream); the lexicon proxy floors it at 0

    def __init__(self, analyzer_backend: str, analyzer_options: dict[str, Any] | None = None, cache_size: int = 4096):
        super().__init__(cache_size=cache_size)
        self._backend = analyzer_backend
        self._options = tuple(sorted((analyzer_options or {}).items()))

    @property
    def analyzer(self) -> EntityAnalyzer:
        return _load_analyzer(self._backend, self._options)

    def annotate(self, texts: list[str]) -> list[ReportAnalysis]:
        """Texts without a sentence RaTEScore would read (>= 3 characters) get no entities and skip the models."""
        readable = [i for i, t in enumerate(texts) if has_rate_sentence(t)]
        analysed = self.analyzer.analyze([texts[i] for i in readable]) if readable else []
        if len(analysed) != len(readable):
            raise RuntimeError(f"the {self._backend} analyzer returned {len(analysed)} analyses for {len(readable)} texts")
        analyses = dict(zip(readable, analysed))
        return [analyses.get(i) or ReportAnalysis(t, tuple(split_sentences(t)), (), np.zeros((0, 1), np.float32))
                for i, t in enumerate(texts)]

    def compare(self, hyp: ReportAnalysis, ref: ReportAnalysis) -> dict[str, float]:
        return rate_scores(hyp, ref, self.min_cosine)


@lru_cache(maxsize=4)
def _load_analyzer(backend: str, options: tuple) -> EntityAnalyzer:
    """One analyzer (and model load) per process and configuration."""
    from rewards.entities.backends import build_analyzer

    return build_analyzer(backend, **dict(options))
