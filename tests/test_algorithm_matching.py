"""Matching (docs/algorithm.md §3): RaTEScore's affinity matrix and negation weight, affinity vs paper rules."""
import numpy as np
import pytest

from rewards.entities import affinity as a
from swift_plugins.editgrpo.algorithm import matching as m
from rewards.entities.types import ABNORMALITY, ANATOMY, DISEASE, NON_ABNORMALITY, NON_DISEASE
from rewards.entities.lexicon import LexiconAnalyzer

ABN, ANAT, DIS, NABN, NDIS = ABNORMALITY, ANATOMY, DISEASE, NON_ABNORMALITY, NON_DISEASE

# The spec's table (rows = generated type, columns = reference type), 5 decimals.
SPEC_TABLE = {
    ABN: {ABN: 0.42761, ANAT: 0.62409, DIS: 0.00345, NABN: 0.54310, NDIS: 0.27005},
    ANAT: {ABN: 0.74878, ANAT: 0.28561, DIS: 0.45921, NABN: 0.02097, NDIS: 0.00014},
    DIS: {ABN: 0.83965, ANAT: 0.99502, DIS: 0.84606, NABN: 0.98207, NDIS: 0.37891},
    NABN: {ABN: 0.16547, ANAT: 0.01867, DIS: 0.71940, NABN: 0.00094, NDIS: 0.09273},
    NDIS: {ABN: 0.77594, ANAT: 0.18391, DIS: 0.10073, NABN: 0.03860, NDIS: 0.34066},
}


def unit(*rows):
    array = np.array(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_affinity_matrix_is_the_spec_table():
    assert len(a.AFFINITY) == 25
    for gen_type, row in SPEC_TABLE.items():
        for ref_type, value in row.items():
            assert a.AFFINITY[(gen_type, ref_type)] == pytest.approx(value, abs=5e-6)
            assert a.AFFINITY_MATRIX[a.TYPE_INDEX[gen_type], a.TYPE_INDEX[ref_type]] == a.AFFINITY[(gen_type, ref_type)]
    assert a.NEGATION_WEIGHT == 0.3612


def test_negation_pairs_are_ratescores_eight():
    assert len(a.NEGATION_PAIRS) == 8
    opposite = a.opposite_polarity_matrix([NABN, DIS, NDIS, NABN, ANAT, ABN], [ABN, NABN, ABN, NDIS, NABN, DIS])
    assert opposite.diagonal().tolist() == [True, True, True, False, False, False]


def test_similarity_matrix_shapes_and_zero_rows():
    gen = unit([1, 0], [1, 1])
    ref = np.array([[2, 0], [0, 0]], dtype=np.float32)  # not normalised; a zero row
    cos = a.similarity_matrix(gen, ref)
    assert cos == pytest.approx(np.array([[1, 0], [np.sqrt(0.5), 0]]))
    assert a.similarity_matrix(np.zeros((0, 4)), gen.repeat(2, axis=1)).shape == (0, 2)
    assert a.similarity_matrix(gen, np.zeros((0, 2))).shape == (2, 0)


def test_affinity_scores_formula():
    cos = np.array([[0.9, 0.8], [0.5, 1.0]])
    scores = a.affinity_scores(cos, [DIS, NABN], [NDIS, DIS])
    expected = [[0.9 * SPEC_TABLE[DIS][NDIS] * 0.3612, 0.8 * SPEC_TABLE[DIS][DIS]],
                [0.5 * SPEC_TABLE[NABN][NDIS], 1.0 * SPEC_TABLE[NABN][DIS] * 0.3612]]
    assert scores == pytest.approx(np.array(expected), abs=1e-5)


def test_empty_sides():
    emb = unit([1, 0], [0, 1])
    no_gen = m.match_entities([], np.zeros((0, 2)), [DIS, ANAT], emb)
    assert no_gen.false_positives == () and no_gen.false_negatives == (0, 1)
    no_ref = m.match_entities([DIS, ANAT], emb, [], np.zeros((0, 2)), mode="paper")
    assert no_ref.false_positives == (0, 1) and no_ref.false_negatives == ()
    assert np.isneginf(no_ref.gen_best).all()


def test_affinity_mode_identical_entities_depend_on_type():
    """Same text on both sides: DISEASE matches (0.85 >= 0.6); ABNORMALITY (0.43), ANATOMY (0.29)
    and negated types (<= 0.35) never reach tau -- the reference code's (published) behaviour."""
    emb = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    for kind, is_fp in ((DIS, False), (ABN, True), (ANAT, True), (NABN, True), (NDIS, True)):
        result = m.match_entities([kind], emb[:1], [kind], emb[:1])
        assert (result.false_positives == (0,)) is is_fp
        assert (result.false_negatives == (0,)) is is_fp


def test_affinity_contradiction_and_fn_exclusion():
    """Gen NON-DISEASE 'pneumonia' vs ref DISEASE 'pneumonia': best match has opposite polarity, cos 1 >= tau."""
    emb = unit([1, 0], [0, 1])
    result = m.match_entities([NDIS, DIS], emb, [DIS, ANAT], unit([1, 0], [0.1, 1]))
    assert result.contradictions == ((0, 0),)
    assert 0 not in result.false_negatives  # the contradicted ref entity is not also FN
    assert 0 in result.false_positives  # 1 * 0.10073 * 0.3612 < tau


def test_paper_mode_polarity_and_strict_threshold():
    emb = unit([1, 0], [0, 1])
    same = m.match_entities([NABN, ANAT], emb, [NABN, ANAT], emb, mode="paper")
    assert same.false_positives == () and same.false_negatives == () and same.contradictions == ()
    flipped = m.match_entities([NABN], emb[:1], [ABN], emb[:1], mode="paper")
    assert flipped.contradictions == ((0, 0),) and flipped.false_positives == (0,) and flipped.false_negatives == (0,)
    # cos exactly tau: paper needs cos > tau, affinity s >= tau
    at_tau = unit([0.6, 0.8])
    cos = float(a.similarity_matrix(unit([1, 0]), at_tau)[0, 0])
    result = m.match_entities([ANAT], unit([1, 0]), [ANAT], at_tau, mode="paper", tau=cos)
    assert result.false_positives == (0,)
    loose = m.match_entities([ANAT], unit([1, 0]), [ANAT], at_tau, mode="paper", tau=cos - 1e-6)
    assert loose.false_positives == ()


def test_tau_boundary_in_affinity_mode():
    emb = unit([1, 0])
    exact = a.AFFINITY[(DIS, DIS)]
    assert m.match_entities([DIS], emb, [DIS], emb, tau=exact - 1e-9).false_positives == ()
    assert m.match_entities([DIS], emb, [DIS], emb, tau=exact + 1e-6).false_positives == (0,)


def test_modes_differ_on_a_real_iu_pair(iu_reports):
    """IU-XRay 306 vs 211: every finding of 306 is stated in 211, so `paper` has no FP; `affinity`
    flags all of them (ANATOMY/NON-ABNORMALITY against themselves stay below tau)."""
    by_uid = {r["uid"]: r["findings"] for r in iu_reports}
    gen, ref = LexiconAnalyzer().analyze([by_uid["306"], by_uid["211"]])
    args = ([e.type for e in gen.entities], gen.embeddings, [e.type for e in ref.entities], ref.embeddings)
    paper, affinity = m.match_entities(*args, mode="paper"), m.match_entities(*args, mode="affinity")
    assert paper.false_positives == ()
    assert [ref.entities[j].text for j in paper.false_negatives] == ["Trachea", "pleural effusion"]
    assert affinity.false_positives == tuple(range(len(gen.entities)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="match mode"):
        m.match_entities([], np.zeros((0, 2)), [], np.zeros((0, 2)), mode="exact")
    with pytest.raises(ValueError, match="unknown entity type"):
        a.type_weights(["FINDING"], [DIS])
