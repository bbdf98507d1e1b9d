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


# Text that says nothing about the chest: what a policy could drift to if the proxies paid for it.
NON_CLINICAL_WORDS = ("banana", "keyboard", "sunshine", "window", "guitar", "river", "purple", "elephant", "coffee",
                      "mountain", "paper", "yesterday", "bicycle", "orange", "happy", "music")
JUNK = ["...", "!!! ??? ;;;", ". . . .", "?", "-", "\x00", "\x00\x01\x02", "   \t  ", "心脏大小正常，肺部清晰。",
        "القلب طبيعي والرئتان صافيتان", "Сердце нормального размера.", "😀😀😀", "<|im_end|>", "lorem ipsum dolor sit amet",
        " ".join(NON_CLINICAL_WORDS[:6]) + ".", ". ".join(NON_CLINICAL_WORDS) + "."]


def random_words(seed: int, n: int = 12) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(NON_CLINICAL_WORDS, size=n)) + "."


def parts(scorers, hyps, refs) -> dict[str, list[float]]:
    return {metric: scorer.score(hyps, refs).values for metric, scorer in scorers.items()}


def test_junk_scores_no_more_than_the_empty_report(scorers, iu_findings):
    """Against normal and abnormal IU-XRay references, junk earns no part more than "" does (before: 1.5 vs 0.5)."""
    junk = JUNK + [random_words(seed) for seed in range(8)]
    for ref in iu_findings[:40:4]:
        values = parts(scorers, ["", *junk], [ref] * (len(junk) + 1))
        for metric, column in values.items():
            assert max(column[1:]) <= column[0], (metric, ref)
        totals = np.sum(list(values.values()), axis=0)
        assert totals[1:].max() <= totals[0] <= 0.5
    assert label_report("...").tolist() == label_report("banana keyboard.").tolist() == [BLANK] * len(CONDITIONS)
    for statement in ("No acute cardiopulmonary abnormality.", "Clear lungs.", "Normal chest", "No active disease."):
        assert label_report(statement)[CONDITIONS.index("No Finding")] == POSITIVE, statement


def test_a_correct_positive_finding_beats_junk(scorers, iu_findings):
    """The sentences of a real report that state its positive findings score above junk against it, and above junk
    against a normal reference (where junk got 1.5 and such findings often less)."""
    from templates.report import split_sentences

    cases = []
    for ref in iu_findings:
        positive = [c for c, v in zip(CONDITIONS[:-1], label_report(ref)) if v == POSITIVE]
        findings = [s for s in split_sentences(ref) if any(label_report(s)[CONDITIONS.index(c)] == POSITIVE for c in positive)]
        if findings:
            cases.append((" ".join(findings), ref))
        if len(cases) == 40:
            break
    clinical = rewards.ClinicalScorer(scorers)
    normal = iu_findings[0]
    assert label_report(normal)[CONDITIONS.index("No Finding")] == POSITIVE
    junk_on_normal = clinical.score(JUNK, [normal] * len(JUNK)).values
    for finding, ref in cases:
        finding_score, *junk_scores = clinical.score([finding, "", *JUNK], [ref] * (len(JUNK) + 2)).values
        assert finding_score > max(junk_scores + junk_on_normal), (finding, ref)


def test_proxies_stay_in_their_ranges(scorers, iu_reports):
    """Every part in [0, 1] (RaTEScore's range; the lexicon RaTE proxy went down to -0.36), the sum in [0, 3]."""
    texts = [t for row in iu_reports[:400] for t in (row["findings"], row["impression"]) if t.strip()]
    rng = np.random.default_rng(0)
    hyps, refs = list(rng.choice(texts, 1500)), list(rng.choice(texts, 1500))
    values = parts(scorers, hyps, refs)
    for metric, column in values.items():
        assert 0.0 <= min(column) and max(column) <= 1.0, metric
    assert 0.0 <= np.sum(list(values.values()), axis=0).min()


def test_an_rl_step_on_the_proxies_does_not_favour_junk(scorers, iu_findings):
    """The drift check as a property of the reward (a swift run on the random tiny policy would sample noise, not
    reports, and say nothing about junk in a few steps): in GRPO groups of real IU-XRay completions for a real
    reference (other reports, the reference missing a sentence) plus junk and "", every junk completion gets a
    strictly lower reward, so a lower advantage, than the group's best real completion, and none above ""."""
    from templates.report import split_sentences

    rng = np.random.default_rng(3)
    clinical = rewards.ClinicalScorer(scorers)
    junk = JUNK + [random_words(seed) for seed in range(4)]
    for index in rng.choice(len(iu_findings), 30, replace=False):
        ref = iu_findings[index]
        sentences = split_sentences(ref)
        near_miss = " ".join(sentences[:-1]) if len(sentences) > 1 else ref
        on_policy = [near_miss] + [iu_findings[i] for i in rng.choice(len(iu_findings), 5)]
        group = on_policy + ["", *junk]
        rewards_ = np.array(clinical.score(group, [ref] * len(group)).values)
        advantages = rewards_ - rewards_.mean()
        best, empty, worst_junk = advantages[:len(on_policy)].max(), advantages[len(on_policy)], advantages[len(on_policy) + 1:]
        assert worst_junk.max() < best and worst_junk.max() <= empty, ref


def test_negation_scope_is_linear_in_the_clause():
    """A clause's cues are found once, not searched for around every mention: a 100k-character clause of 11k
    mentions is labelled in seconds (~45 s when each mention searched the text before and after it)."""
    import time

    start = time.perf_counter()
    labels = label_report("effusion " * 11_000)
    assert time.perf_counter() - start < 10
    assert labels[CONDITIONS.index("Pleural Effusion")] == POSITIVE
