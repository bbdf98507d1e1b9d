"""RaTEScore's entity-type affinities and negation penalty, and the cosine/affinity matrices built on them.

The single source of these numbers: the RaTEScore reward and the edit engine's matching both
read them here. Pure numpy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rewards.entities.types import ABNORMALITY, ANATOMY, DISEASE, ENTITY_TYPES, NON_ABNORMALITY, NON_DISEASE

# RaTEScore's default ("long") affinity matrix, as shipped with RaTEScore and used by the
# EditGRPO reference. The edit engine reads it as (generated type, reference type); RaTEScore's
# score reads the same dict as (reference type, candidate type).
AFFINITY: dict[tuple[str, str], float] = {
    (ABNORMALITY, ABNORMALITY): 0.4276119164393705,
    (ABNORMALITY, ANATOMY): 0.6240929990607657,
    (ABNORMALITY, DISEASE): 0.0034478181112993847,
    (ABNORMALITY, NON_ABNORMALITY): 0.5431049700217344,
    (ABNORMALITY, NON_DISEASE): 0.27005425386213877,
    (ANATOMY, ABNORMALITY): 0.7487824274337533,
    (ANATOMY, ANATOMY): 0.2856134859160784,
    (ANATOMY, DISEASE): 0.4592143222158069,
    (ANATOMY, NON_ABNORMALITY): 0.02097055139911715,
    (ANATOMY, NON_DISEASE): 0.00013736314126696204,
    (DISEASE, ABNORMALITY): 0.8396510075734789,
    (DISEASE, ANATOMY): 0.9950209388542061,
    (DISEASE, DISEASE): 0.8460555030578727,
    (DISEASE, NON_ABNORMALITY): 0.9820689020512646,
    (DISEASE, NON_DISEASE): 0.3789136708096537,
    (NON_ABNORMALITY, ABNORMALITY): 0.16546764653692908,
    (NON_ABNORMALITY, ANATOMY): 0.018670610691852826,
    (NON_ABNORMALITY, DISEASE): 0.719397354576018,
    (NON_ABNORMALITY, NON_ABNORMALITY): 0.0009357166071730684,
    (NON_ABNORMALITY, NON_DISEASE): 0.0927333564267591,
    (NON_DISEASE, ABNORMALITY): 0.7759420231214385,
    (NON_DISEASE, ANATOMY): 0.1839139293714062,
    (NON_DISEASE, DISEASE): 0.10073046076318157,
    (NON_DISEASE, NON_ABNORMALITY): 0.03860183811876373,
    (NON_DISEASE, NON_DISEASE): 0.34065681486566446,
}
# RaTEScore's negation penalty, applied when one side is negated and the other a positive
# ABNORMALITY/DISEASE (ANATOMY carries no polarity in RaTEScore's pair list).
NEGATION_WEIGHT = 0.3612
NEGATION_PAIRS: frozenset[tuple[str, str]] = frozenset(
    (a, b)
    for neg in (NON_ABNORMALITY, NON_DISEASE)
    for pos in (ABNORMALITY, DISEASE)
    for a, b in ((neg, pos), (pos, neg))
)

TYPE_INDEX: dict[str, int] = {t: i for i, t in enumerate(ENTITY_TYPES)}
# The same numbers as a matrix over ENTITY_TYPES order (rows: first type of the key).
AFFINITY_MATRIX = np.array([[AFFINITY[(a, b)] for b in ENTITY_TYPES] for a in ENTITY_TYPES], dtype=np.float64)
_PENALTY_MATRIX = np.array(
    [[NEGATION_WEIGHT if (a, b) in NEGATION_PAIRS else 1.0 for b in ENTITY_TYPES] for a in ENTITY_TYPES],
    dtype=np.float64,
)
_WEIGHT_MATRIX = AFFINITY_MATRIX * _PENALTY_MATRIX
_OPPOSITE_MATRIX = np.array([[(a, b) in NEGATION_PAIRS for b in ENTITY_TYPES] for a in ENTITY_TYPES])


def type_indices(types: Sequence[str]) -> np.ndarray:
    """Row/column indices of entity types into AFFINITY_MATRIX (unknown type -> ValueError)."""
    try:
        return np.fromiter((TYPE_INDEX[t] for t in types), dtype=np.intp, count=len(types))
    except KeyError as err:
        raise ValueError(f"unknown entity type {err.args[0]!r}; expected one of {ENTITY_TYPES}") from None


def similarity_matrix(gen_embeddings: np.ndarray, ref_embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity (n_gen, n_ref); rows are re-normalised, zero rows give 0, empty sides give an empty matrix."""
    gen = _unit_rows(gen_embeddings)
    ref = _unit_rows(ref_embeddings)
    if gen.shape[0] == 0 or ref.shape[0] == 0:
        return np.zeros((gen.shape[0], ref.shape[0]), dtype=np.float64)
    return np.clip(gen @ ref.T, -1.0, 1.0).astype(np.float64)


def type_weights(gen_types: Sequence[str], ref_types: Sequence[str]) -> np.ndarray:
    """W[type_i, type_j] * p_ij for every (generated i, reference j) pair."""
    gi, rj = type_indices(gen_types)[:, None], type_indices(ref_types)[None, :]
    return _WEIGHT_MATRIX[gi, rj]


def affinity_scores(cosine: np.ndarray, gen_types: Sequence[str], ref_types: Sequence[str]) -> np.ndarray:
    """s_ij = c_ij * W[type_i, type_j] * p_ij (docs/algorithm.md §3, the reference code's effective score)."""
    return cosine * type_weights(gen_types, ref_types)


def opposite_polarity_matrix(gen_types: Sequence[str], ref_types: Sequence[str]) -> np.ndarray:
    """Boolean (n_gen, n_ref): the pair has opposite presence polarity in RaTEScore's sense."""
    return _OPPOSITE_MATRIX[type_indices(gen_types)[:, None], type_indices(ref_types)[None, :]]


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        array = array.reshape(len(array), -1) if array.size else np.zeros((0, 1), dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", array, array))[:, None]
    return array / np.maximum(norms, 1e-30)  # zero rows stay zero
