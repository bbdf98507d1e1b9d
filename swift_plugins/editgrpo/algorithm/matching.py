"""Entity matching between a generated and a reference report (docs/algorithm.md §3).

RaTEScore's type-affinity matrix and negation weight come from `rewards.entities.affinity`, the
single source the RaTEScore reward reads too.

Two modes decide which entities are wrong (false positives, FP), missing (false negatives, FN)
or contradicting:

* ``affinity`` (default, as the reference EditGRPO code): ``s_ij = cos_ij * W[gen_i, ref_j] * p_ij``.
  Because ``W[NON-X, NON-X]`` is tiny, negated entities never reach tau and are always FP/FN;
  so do ABNORMALITY and ANATOMY against themselves (W = 0.43 and 0.29). This is what the
  published numbers used; it is kept as the default on purpose.
* ``paper``: an entity is matched when some entity on the other side has raw ``cos > tau`` and
  the same presence polarity; a pair with ``cos > tau`` and opposite polarity contradicts.

All functions are pure: numpy arrays and type names in, arrays and index tuples out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rewards.entities.affinity import affinity_scores, opposite_polarity_matrix, similarity_matrix
from rewards.entities.types import NEGATED_TYPES

MATCH_MODES: tuple[str, ...] = ("affinity", "paper")
DEFAULT_TAU = 0.6

@dataclass(frozen=True)
class MatchResult:
    """Which entities are wrong, missing or contradicting; indices refer to the arrays passed in.

    ``cosine`` is the raw cosine matrix (used by FP replacement); ``scores`` the matrix the mode
    thresholds (affinity scores, or the raw cosine in ``paper`` mode); ``gen_best``/``ref_best``
    each entity's best score against the other side (-inf when the other side is empty).
    """

    cosine: np.ndarray
    scores: np.ndarray
    false_positives: tuple[int, ...]
    false_negatives: tuple[int, ...]
    contradictions: tuple[tuple[int, int], ...]
    gen_best: np.ndarray
    ref_best: np.ndarray


def match_entities(
    gen_types: Sequence[str],
    gen_embeddings: np.ndarray,
    ref_types: Sequence[str],
    ref_embeddings: np.ndarray,
    mode: str = "affinity",
    tau: float = DEFAULT_TAU,
) -> MatchResult:
    """FP, FN and contradictions of generated vs reference entities (docs/algorithm.md §3).

    No generated entities -> every reference entity is FN; no reference entities -> every
    generated entity is FP. FP/FN indices come in input (= text) order; contradictions as
    (gen, ref) pairs in generated order.
    """
    if mode not in MATCH_MODES:
        raise ValueError(f"match mode must be one of {MATCH_MODES}, got {mode!r}")
    cosine = similarity_matrix(gen_embeddings, ref_embeddings)
    n_gen, n_ref = cosine.shape
    if mode == "affinity":
        scores = affinity_scores(cosine, gen_types, ref_types)
        contradictions = _affinity_contradictions(cosine, scores, opposite_polarity_matrix(gen_types, ref_types), tau)
        gen_best = _best(scores, axis=1, size=n_gen)
        ref_best = _best(scores, axis=0, size=n_ref)
        contradicted_refs = {j for _, j in contradictions}
        fp = tuple(int(i) for i in np.flatnonzero(gen_best < tau))
        fn = tuple(int(j) for j in np.flatnonzero(ref_best < tau) if int(j) not in contradicted_refs)
    else:
        scores = cosine
        negated_gen = np.fromiter((t in NEGATED_TYPES for t in gen_types), dtype=bool, count=n_gen)
        negated_ref = np.fromiter((t in NEGATED_TYPES for t in ref_types), dtype=bool, count=n_ref)
        same_polarity = negated_gen[:, None] == negated_ref[None, :]
        close = cosine > tau
        matched = close & same_polarity
        fp = tuple(int(i) for i in np.flatnonzero(~matched.any(axis=1)))
        fn = tuple(int(j) for j in np.flatnonzero(~matched.any(axis=0)))
        contradictions = tuple((int(i), int(j)) for i, j in zip(*np.nonzero(close & ~same_polarity)))
        gen_best = _best(np.where(same_polarity, cosine, -np.inf), axis=1, size=n_gen)
        ref_best = _best(np.where(same_polarity, cosine, -np.inf), axis=0, size=n_ref)
    return MatchResult(cosine, scores, fp, fn, contradictions, gen_best, ref_best)


def _affinity_contradictions(
    cosine: np.ndarray, scores: np.ndarray, opposite: np.ndarray, tau: float
) -> tuple[tuple[int, int], ...]:
    """Gen entity i contradicts when its best-scoring ref j (first on ties) has opposite polarity and c_ij >= tau."""
    if scores.size == 0:
        return ()
    best_j = np.argmax(scores, axis=1)
    rows = np.arange(scores.shape[0])
    hit = opposite[rows, best_j] & (cosine[rows, best_j] >= tau)
    return tuple((int(i), int(best_j[i])) for i in np.flatnonzero(hit))


def _best(matrix: np.ndarray, axis: int, size: int) -> np.ndarray:
    if matrix.size == 0:
        return np.full(size, -np.inf)
    return matrix.max(axis=axis)
