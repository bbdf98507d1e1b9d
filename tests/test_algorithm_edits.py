"""Edit operations (docs/algorithm.md §4) on real IU-XRay report pairs, hand-checked expected outputs.

Reports are referred to by IU-XRay uid (findings section) and analysed with the offline
lexicon backend; each case's expected text was worked out by hand from the spec's rules.
"""
import random

import numpy as np
import pytest

from swift_plugins.editgrpo.algorithm.edits import EditOp, EditOptions, edit_report
from rewards.entities.types import ReportAnalysis
from rewards.entities.lexicon import LexiconAnalyzer, hashed_ngram_embedding
from swift_plugins.editgrpo.algorithm.matching import match_entities

ANALYZER = LexiconAnalyzer()


@pytest.fixture(scope="module")
def iu(iu_reports):
    by_uid = {r["uid"]: r for r in iu_reports}
    return lambda uid, section="findings": ANALYZER.analyze_one(by_uid[uid][section])


def ops(result):
    return [(op.op, op.old_sentence, op.new_sentence, op.trigger) for op in result.ops]


def test_fp_replacement_affinity(iu):
    """100 vs 56: under affinity every entity of 100 is FP (ANATOMY/NON-ABN never reach tau). The
    first, 'lungs' in 'Both lungs are clear and expanded.', best matches 'The lungs are clear.' (cos 1)."""
    result = edit_report(iu("100"), iu("56"))
    assert result.changed
    assert result.text == "The lungs are clear. Heart and mediastinum normal."
    assert ops(result) == [("fp_replace", "Both lungs are clear and expanded.", "The lungs are clear.", "lungs")]
    assert result.ops[0].score == pytest.approx(1.0)


def test_fp_deletion_when_no_reference_sentence_is_similar(iu):
    """26 vs 56 in paper mode: only 'spondylosis' is unmatched; no reference sentence has a similar
    entity, so its sentence is deleted (and deletion outranks the FN additions that were possible)."""
    gen, ref = iu("26"), iu("56")
    result = edit_report(gen, ref, EditOptions(match="paper"))
    assert result.text == "The cardiac contours are normal. The lungs are clear."
    assert ops(result) == [("fp_delete", "Thoracic spondylosis.", "", "spondylosis")]


def test_fp_deletion_affinity_then_empty_guard(iu):
    """202 ('AP and lateral view of the chest.') vs 56: 'chest' is FP with nothing similar in 56 ->
    deleted; the report is then empty, so the guard appends an FN sentence (seed 0 -> the 2nd)."""
    result = edit_report(iu("202"), iu("56"), EditOptions(seed=0))
    assert ops(result) == [
        ("fp_delete", "AP and lateral view of the chest.", "", "chest"),
        ("empty_guard", "", "The mediastinum is unremarkable.", "unremarkable"),
    ]
    assert result.text == "The mediastinum is unremarkable."


def test_empty_guard_without_fn_leaves_rollout_unedited(iu):
    """202 vs impression of 1585 ('No interval change.', no entities): 'chest' is FP, nothing to
    replace it with, deletion empties the report and there is no FN sentence -> unedited."""
    gen, ref = iu("202"), iu("1585", "impression")
    assert ref.entities == ()
    result = edit_report(gen, ref)
    assert not result.changed and result.text == gen.text and result.ops == ()


def test_fn_addition_paper(iu):
    """306 vs 211 in paper mode: every entity of 306 is in 211; FN = 'Trachea' (sentence 'Trachea is
    midline.') and 'pleural effusion' ('No pleural effusion.'). One is chosen at random and appended."""
    gen, ref = iu("306"), iu("211")
    seen = {}
    for seed in range(20):
        result = edit_report(gen, ref, EditOptions(match="paper", seed=seed))
        assert [o.op for o in result.ops] == ["fn_add"]
        assert result.text == gen.text + " " + result.ops[0].new_sentence
        seen[result.ops[0].new_sentence] = result.ops[0].trigger
    assert seen == {"Trachea is midline.": "Trachea", "No pleural effusion.": "pleural effusion"}
    assert edit_report(gen, ref, EditOptions(match="paper", seed=0)).text == (
        "The lungs are clear. Heart size is normal. No pneumothorax. No pleural effusion.")


def test_fn_addition_fails_when_sentence_already_present(iu):
    """Reference-code behaviour: the chosen FN's sentence is already in the report -> the addition
    fails (no retry). Built by hand: a generated analysis of 306 whose entities were not found."""
    gen = iu("306")
    gen_without_entities = ReportAnalysis(gen.text, gen.sentences, (), np.zeros((0, ANALYZER.dim), np.float32))
    ref = ANALYZER.analyze_one("No pneumothorax.")
    result = edit_report(gen_without_entities, ref)
    assert not result.changed and result.ops == ()
    other = ANALYZER.analyze_one("No pleural effusion.")
    assert ops(edit_report(gen_without_entities, other)) == [("fn_add", "", "No pleural effusion.", "pleural effusion")]


def test_contradiction_paper_only(iu):
    """798 ('No pleural effusion.') vs 1593 ('Moderate sized right loculated pleural effusion ...'):
    same entity, opposite polarity. Paper mode replaces the sentence first; affinity has no such op."""
    gen, ref = iu("798"), iu("1593")
    paper = edit_report(gen, ref, EditOptions(match="paper"))
    assert ops(paper) == [("contradiction", "No pleural effusion.",
                           "Moderate sized right loculated pleural effusion with right lower lobe atelectasis.",
                           "pleural effusion")]
    assert paper.text == ("The heart is not enlarged. Lungs are clear. "
                          "Moderate sized right loculated pleural effusion with right lower lobe atelectasis.")
    # contradiction outranks FP handling: paper mode has FP entities here too
    match = match_entities([e.type for e in gen.entities], gen.embeddings, [e.type for e in ref.entities],
                           ref.embeddings, mode="paper")
    assert match.false_positives
    assert all(o.op != "contradiction" for o in edit_report(gen, ref).ops)
    assert all(o.op != "contradiction" for o in edit_report(gen, ref, EditOptions(match="paper", contradictions=False)).ops)


def test_paper_and_affinity_differ(iu):
    """26 vs 56: affinity rewrites the correct anatomy sentence (ANATOMY vs ANATOMY = 0.29 < tau),
    paper keeps it and deletes the unsupported 'Thoracic spondylosis.'."""
    gen, ref = iu("26"), iu("56")
    affinity = edit_report(gen, ref, EditOptions(match="affinity"))
    assert ops(affinity) == [("fp_replace", "The cardiac contours are normal.", "The heart is normal in size.",
                              "cardiac contours")]
    paper = edit_report(gen, ref, EditOptions(match="paper"))
    assert paper.text != affinity.text


def test_tau_and_fp_scope(iu):
    """3399 vs 2812 with fp_scope=sentence: sentence 0 has FP {'infiltrate', 'left lower lobe'}; the
    best reference sentence holds 'infiltrate' (cos 1) and 'right lower lobe' (cos c), score (1+c)/2.
    Below that tau the sentence is replaced; above it the next FP sentence ('Heart size remains
    normal.', score 1) is. With fp_scope=trigger the score is 1 whatever tau <= 1."""
    gen, ref = iu("3399"), iu("2812")
    c = float(hashed_ngram_embedding("left lower lobe") @ hashed_ngram_embedding("right lower lobe"))
    score = (1 + c) / 2
    assert 0.6 < score < 0.95
    first = "A strandy infiltrate has developed in the left lower lobe."
    replacement = "In the interval, a patchy infiltrate has developed in the right lower lobe."
    low = edit_report(gen, ref, EditOptions(fp_scope="sentence", tau=score - 1e-6))
    assert ops(low) == [("fp_replace", first, replacement, "infiltrate")]
    assert low.ops[0].score == pytest.approx(score, abs=1e-6)
    high = edit_report(gen, ref, EditOptions(fp_scope="sentence", tau=score + 1e-6))
    assert ops(high) == [("fp_replace", "Heart size remains normal.", "Heart and pulmonary XXXX are normal.", "Heart size")]
    trigger = edit_report(gen, ref, EditOptions(fp_scope="trigger", tau=score + 1e-6))
    assert ops(trigger)[0][1:3] == (first, replacement)


def test_tau_one_forbids_replacement_unless_exact(iu):
    result = edit_report(iu("26"), iu("86"), EditOptions(tau=1.0))
    assert [o.op for o in result.ops] in (["fp_delete"], ["fp_replace"])
    if result.ops[0].op == "fp_replace":
        assert result.ops[0].score >= 1.0


def test_budget_and_never_touching_a_sentence_twice(iu):
    """100 vs 56 with 3 operations: two replacements (sentences 0 and 1), then an FN addition."""
    result = edit_report(iu("100"), iu("56"), EditOptions(ops_per_rollout=3))
    assert ops(result) == [
        ("fp_replace", "Both lungs are clear and expanded.", "The lungs are clear.", "lungs"),
        ("fp_replace", "Heart and mediastinum normal.", "The heart is normal in size.", "Heart"),
        ("fn_add", "", "The mediastinum is unremarkable.", "unremarkable"),
    ]
    assert result.text == "The lungs are clear. The heart is normal in size. The mediastinum is unremarkable."
    for budget in (0, 1, 2):
        assert len(edit_report(iu("100"), iu("56"), EditOptions(ops_per_rollout=budget)).ops) == budget
    assert not edit_report(iu("100"), iu("56"), EditOptions(ops_per_rollout=0)).changed


def test_identical_reports_are_not_edited(iu):
    gen = iu("1")
    for match in ("affinity", "paper"):
        result = edit_report(gen, iu("1"), EditOptions(match=match, ops_per_rollout=3))
        assert not result.changed and result.text == gen.text and result.ops == ()


def test_bad_inputs(iu):
    ref = iu("56")
    empty = ANALYZER.analyze_one("")
    blank = ANALYZER.analyze_one("  \n ")
    for gen in (empty, blank):  # every reference entity is FN: one reference sentence is added
        result = edit_report(gen, ref)
        assert result.changed and [o.op for o in result.ops] == ["fn_add"]
        assert result.sentences[0] in ref.sentences
    no_entities_ref = iu("1585", "impression")  # "No interval change.": no FN to add, so unedited (docs/algorithm.md §4, guards)
    result = edit_report(empty, no_entities_ref)
    assert not result.changed and result.text == "" and result.ops == ()
    assert not edit_report(iu("56"), empty).changed  # empty reference: nothing to learn from
    unicode = ANALYZER.analyze_one("Cœur normal. Épanchement pleural gauche. 肺 clear")
    assert edit_report(unicode, ref).changed
    no_terminator = ANALYZER.analyze_one("Heart size normal lungs clear no effusion")
    result = edit_report(no_terminator, ref)
    assert result.changed and set(result.sentences) <= set(ref.sentences) | set(no_terminator.sentences)
    # 10,000 words: all entities are attributed to the first sentence (first containing their text),
    # which equals a reference sentence, so no replacement exists and it is deleted.
    long = ANALYZER.analyze_one(" ".join(["The lungs are clear."] * 2500))
    result = edit_report(long, ref)
    assert ops(result) == [("fp_delete", "The lungs are clear.", "", "lungs")] and len(result.sentences) == 2499


def test_deterministic_for_a_seed_and_rng_argument(iu):
    gen, ref = iu("306"), iu("211")
    options = EditOptions(match="paper", seed=5)
    assert edit_report(gen, ref, options) == edit_report(gen, ref, options)
    assert edit_report(gen, ref, options, random.Random(5)) == edit_report(gen, ref, options)


def test_ops_serialise():
    op = EditOp("fp_delete", "a.", "", "x", float("-inf"))
    assert op.to_dict() == {"op": "fp_delete", "old_sentence": "a.", "new_sentence": "", "trigger": "x", "score": None}


@pytest.mark.parametrize("kwargs, message", [
    ({"ops_per_rollout": -1}, "ops_per_rollout"), ({"tau": 1.5}, "tau"), ({"match": "exact"}, "match"),
    ({"fp_scope": "report"}, "fp_scope"),
])
def test_option_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EditOptions(**kwargs)


@pytest.mark.parametrize("separator", [".\x00 ", ".\x1b[31m", ".\x1b[0m\r\n"])
def test_control_character_after_a_full_stop_ends_the_sentence(iu, iu_reports, separator):
    """100 vs 56 with a control character after the first full stop: the FP replacement replaces
    only 'Both lungs are clear and expanded.' (it used to take the correct next sentence with it)."""
    findings = next(r for r in iu_reports if r["uid"] == "100")["findings"]
    first, second = findings.split(". ", 1)
    result = edit_report(ANALYZER.analyze_one(first + separator + second), iu("56"))
    assert result.text == "The lungs are clear. Heart and mediastinum normal."
    assert ops(result) == [("fp_replace", "Both lungs are clear and expanded.", "The lungs are clear.", "lungs")]


def test_line_broken_rollout_is_not_rejoined_as_run_on_sentences(iu):
    """306 written one finding per line without full stops vs 211 in paper mode: the FN sentence is
    appended and every line keeps a sentence end (not 'The lungs are clear Heart size is normal ...')."""
    gen = ANALYZER.analyze_one("The lungs are clear\nHeart size is normal\nNo pneumothorax")
    assert gen.sentences == ("The lungs are clear", "Heart size is normal", "No pneumothorax")
    result = edit_report(gen, iu("211"), EditOptions(match="paper", seed=0))
    assert ops(result) == [("fn_add", "", "No pleural effusion.", "pleural effusion")]
    assert result.text == "The lungs are clear. Heart size is normal. No pneumothorax. No pleural effusion."
    assert result.sentences == (*gen.sentences, "No pleural effusion.")
