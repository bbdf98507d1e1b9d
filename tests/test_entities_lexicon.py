"""Offline lexicon analyzer on IU-XRay text: terms, negation, normality, spans, embeddings, bad input."""
import os
import subprocess
import sys

import numpy as np
import pytest

from rewards.entities.backends import build_analyzer
from rewards.entities.types import ENTITY_TYPES, sentence_of
from rewards.entities.lexicon import LexiconAnalyzer, hashed_ngram_embedding

ANALYZER = LexiconAnalyzer()


def tagged(text):
    return [(e.text, e.type) for e in ANALYZER.analyze_one(text).entities]


def by_uid(iu_reports, uid):
    return next(r for r in iu_reports if r["uid"] == uid)["findings"]


def test_iu_report_1_negations_and_normal_limits(iu_reports):
    assert tagged(by_uid(iu_reports, "1")) == [
        ("cardiac silhouette", "ANATOMY"), ("mediastinum", "ANATOMY"), ("within normal limits", "NON-ABNORMALITY"),
        ("pulmonary edema", "NON-ABNORMALITY"), ("focal consolidation", "NON-ABNORMALITY"),
        ("pleural effusion", "NON-ABNORMALITY"), ("pneumothorax", "NON-ABNORMALITY"),
    ]


def test_iu_report_2_positive_findings_and_devices(iu_reports):
    assert tagged(by_uid(iu_reports, "2")) == [
        ("cardiomegaly", "DISEASE"), ("sternotomy", "ABNORMALITY"), ("Enlarged", "ABNORMALITY"),
        ("pulmonary arteries", "ANATOMY"), ("Clear", "NON-ABNORMALITY"), ("lungs", "ANATOMY"),
    ]


@pytest.mark.parametrize("text, expected", [
    ("No displaced rib fractures, pneumothorax, or pleural effusion identified.",
     [("rib fractures", "NON-ABNORMALITY"), ("pneumothorax", "NON-ABNORMALITY"), ("pleural effusion", "NON-ABNORMALITY")]),
    ("Lungs are clear without focal consolidation.",
     [("Lungs", "ANATOMY"), ("clear", "NON-ABNORMALITY"), ("focal consolidation", "NON-ABNORMALITY")]),
    ("Negative for pneumonia.", [("pneumonia", "NON-DISEASE")]),
    ("No evidence of active TB or tuberculosis.", [("tuberculosis", "NON-DISEASE")]),
    ("Pneumothorax is not seen.", [("Pneumothorax", "NON-ABNORMALITY")]),
    ("The previously seen effusion has resolved.", [("effusion", "NON-ABNORMALITY")]),
    ("No pneumothorax, but there is a small left pleural effusion.",
     [("pneumothorax", "NON-ABNORMALITY"), ("pleural effusion", "ABNORMALITY")]),
    ("The heart is not enlarged.", [("heart", "ANATOMY"), ("enlarged", "NON-ABNORMALITY")]),
    ("Borderline cardiomegaly with possible pneumonia.", [("cardiomegaly", "DISEASE"), ("pneumonia", "DISEASE")]),
    ("No lungs", [("lungs", "ANATOMY")]),  # anatomy is never negated
    ("Calcified right hilar granulomas.", [("Calcified", "ABNORMALITY"), ("hilar", "ANATOMY"), ("granulomas", "ABNORMALITY")]),
    ("No XXXX infiltrates or masses.", [("infiltrates", "NON-ABNORMALITY"), ("masses", "NON-ABNORMALITY")]),
    ("Costophrenic angles are sharp.", [("Costophrenic angles", "ANATOMY")]),
    ("Right PICC line tip in the SVC.", [("PICC line", "ABNORMALITY"), ("SVC", "ANATOMY")]),
    ("No acute cardiopulmonary abnormality.", [("acute cardiopulmonary abnormality", "NON-ABNORMALITY")]),
])
def test_terms_and_negation_cues(text, expected):
    assert tagged(text) == expected


def test_spans_align_and_sentence_is_first_containing(iu_findings):
    for report in iu_findings[:300]:
        analysis = ANALYZER.analyze_one(report)
        assert analysis.embeddings.shape == (len(analysis.entities), ANALYZER.dim)
        for entity in analysis.entities:
            assert analysis.text[entity.start:entity.end] == entity.text
            assert entity.type in ENTITY_TYPES
            assert entity.sentence == sentence_of(entity.text, analysis.sentences) >= 0
        norms = np.linalg.norm(analysis.embeddings, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-5)


def test_first_containing_sentence_rule(iu_reports):
    """IU uid 4: 'lung' of sentence 2 ('left lung apex') is attributed to sentence 0
    ('chronic obstructive lung disease'), as the reference does."""
    analysis = ANALYZER.analyze_one(by_uid(iu_reports, "4"))
    lungs = [e for e in analysis.entities if e.text == "lung"]
    assert lungs and all(e.sentence == 0 for e in lungs)


def test_coverage_on_all_iu_findings(iu_findings):
    analyses = ANALYZER.analyze(iu_findings)
    assert all(a.entities for a in analyses)
    counts = {t: sum(e.type == t for a in analyses for e in a.entities) for t in ENTITY_TYPES}
    assert min(counts.values()) > 100, counts


def test_embeddings_similar_terms_and_unrelated():
    cos = lambda a, b: float(hashed_ngram_embedding(a) @ hashed_ngram_embedding(b))
    assert cos("opacity", "opacities") == pytest.approx(1.0, abs=1e-6)
    assert cos("pleural effusion", "effusion") > 0.6
    assert cos("right lower lobe", "left lower lobe") > 0.6
    assert cos("pneumothorax", "cardiomegaly") < 0.3
    assert cos("lungs", "heart") < 0.3
    # synonyms share a concept in the lexicon: "effusion" and "pleural effusion" embed identically
    a, b = ANALYZER.analyze(["Small effusion.", "Small pleural effusion."])
    assert float(a.embeddings[0] @ b.embeddings[0]) == pytest.approx(1.0, abs=1e-6)


def test_embeddings_identical_across_processes():
    code = ("from rewards.entities.lexicon import hashed_ngram_embedding as h;"
            "print(h('calcified granuloma').round(6).tolist())")
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(hashed_ngram_embedding("calcified granuloma").round(6).tolist())


def test_bad_inputs(iu_reports):
    empty, blank = ANALYZER.analyze(["", " \n\t "])
    for analysis in (empty, blank):
        assert analysis.text == "" and analysis.sentences == () and analysis.entities == ()
        assert analysis.embeddings.shape == (0, ANALYZER.dim)
    no_terminator = ANALYZER.analyze_one("Heart size normal lungs clear no effusion")
    assert len(no_terminator.sentences) == 1 and [e.type for e in no_terminator.entities][-1] == "NON-ABNORMALITY"
    unicode = ANALYZER.analyze_one("Cœur normal. 肺 clear. Épanchement pleural — no pneumothorax.")
    assert ("pneumothorax", "NON-ABNORMALITY") in [(e.text, e.type) for e in unicode.entities]
    long = " ".join([by_uid(iu_reports, "1")] * 250)  # ~9,000 words
    analysis = ANALYZER.analyze_one(long + " " + " ".join(["word"] * 1000))
    assert len(analysis.entities) == 250 * 7
    assert ANALYZER.analyze_one("XXXX XXXX.").entities == ()


def test_factory():
    assert build_analyzer("lexicon").name == "lexicon"
    assert build_analyzer("lexicon", dim=64).analyze(["No effusion."])[0].embeddings.shape == (1, 64)
    with pytest.raises(ValueError, match="unknown analyzer backend"):
        build_analyzer("radgraph")
    with pytest.raises(ValueError, match="dim"):
        LexiconAnalyzer(dim=2)
