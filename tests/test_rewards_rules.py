"""The offline `rules` proxies on real IU-XRay reports."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import rewards
from rewards.chexbert import CONDITIONS
from rewards.rules import BLANK, NEGATIVE, POSITIVE, UNCERTAIN, label_report

NEGATED = re.compile(r"\bNo (pneumothorax|pleural effusion|focal consolidation|pulmonary edema|cardiomegaly)\b")
CONDITION_OF = {"pneumothorax": "Pneumothorax", "pleural effusion": "Pleural Effusion", "focal consolidation": "Consolidation",
                "pulmonary edema": "Edema", "cardiomegaly": "Cardiomegaly"}


@pytest.fixture(scope="module")
def scorers():
    return rewards.build_scorers(("chexbert", "radgraph", "ratescore"), backend="rules")


def negated_reports(iu_findings, limit: int = 25) -> list[tuple[str, str]]:
    """(report, condition) for real reports with one 'No X' and no other mention of X."""
    found = []
    for text in iu_findings:
        matches = NEGATED.findall(text)
        if len(matches) == 1 and text.lower().count(matches[0].lower()) == 1:
            found.append((text, CONDITION_OF[matches[0].lower()]))
        if len(found) == limit:
            break
    return found


def test_negation_flips_change_labels(iu_findings):
    cases = negated_reports(iu_findings)
    assert len(cases) >= 20
    for text, condition in cases:
        column = CONDITIONS.index(condition)
        assert label_report(text)[column] == NEGATIVE, (condition, text)
        affirmed = NEGATED.sub(lambda m: f"There is {m.group(1)}", text, count=1)
        labels = label_report(affirmed)
        assert labels[column] == POSITIVE, (condition, affirmed)
        assert labels[CONDITIONS.index("No Finding")] == BLANK


def test_uncertainty_and_normal_statements():
    labels = label_report("Heart size is normal. Bibasilar opacities may represent atelectasis.")
    assert labels[CONDITIONS.index("Cardiomegaly")] == NEGATIVE
    assert labels[CONDITIONS.index("Atelectasis")] == UNCERTAIN
    assert labels[CONDITIONS.index("No Finding")] == BLANK
    normal = label_report("The lungs are clear. No pneumothorax or pleural effusion. Heart size normal.")
    assert normal[CONDITIONS.index("No Finding")] == POSITIVE
    assert label_report("Stable cardiomegaly; no edema.")[CONDITIONS.index("Cardiomegaly")] == POSITIVE


def test_negation_flip_lowers_the_proxy_rewards(scorers, iu_findings):
    text, _ = negated_reports(iu_findings, limit=1)[0]
    flipped = NEGATED.sub(lambda m: f"There is {m.group(1)}", text, count=1)
    for metric in ("chexbert", "ratescore"):
        same, changed = scorers[metric].score([text, flipped], [text, text]).values
        assert changed < same, metric


def test_identical_reports_score_maximal(scorers, iu_findings):
    reports = iu_findings[:30]
    chexbert = scorers["chexbert"].score(reports, reports).values
    radgraph = scorers["radgraph"].score(reports, reports).values
    rate = scorers["ratescore"].score(reports, reports).values
    assert chexbert == [1.0] * len(reports)
    assert radgraph == [1.0] * len(reports)  # every one of these reports has lexicon entities
    np.testing.assert_allclose(rate, 1.0, atol=1e-6)
    different = scorers["chexbert"].score(reports, reports[1:] + reports[:1]).values
    assert min(different) < 1.0


def test_empty_inputs_documented_values(scorers, iu_findings):
    """Empty hypothesis: CheXbert proxy 0 (all blank), RadGraph proxy 0 (no entities), RaTEScore 0.5."""
    ref = iu_findings[0]
    for hyps, refs in (([""], [ref]), ([ref], [""]), ([""], [""]), (["ok"], [ref])):
        values = {m: s.score(hyps, refs).values[0] for m, s in scorers.items()}
        assert values["radgraph"] == 0.0 and values["ratescore"] == 0.5
        if "" in hyps + refs:
            assert values["chexbert"] == 0.0
    assert label_report("").tolist() == [BLANK] * len(CONDITIONS)


def test_rules_scorers_are_marked_as_proxies(scorers):
    assert all(getattr(s, "proxy", False) for s in scorers.values())


def test_bad_inputs_stay_finite_and_aligned(scorers, iu_findings):
    hyps = ["", "ok", ". .", "Keine akuten Befunde. 心脏正常。", " ".join(iu_findings[:400]), iu_findings[3]]
    refs = [iu_findings[3]] * len(hyps)
    for scorer in scorers.values():
        result = scorer.score(hyps, refs)
        assert len(result.values) == len(hyps)
        assert all(math.isfinite(v) for v in result.values)
