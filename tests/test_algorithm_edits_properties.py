"""Property tests of the edit engine over random real IU-XRay pairs and garbage strings."""
import os
import random

from hypothesis import HealthCheck, example, given, settings, strategies as st

from swift_plugins.editgrpo.algorithm.edits import EditOptions, edit_report
from rewards.entities.lexicon import LexiconAnalyzer
from templates.report import join_report, split_sentences
from datasets_registry.iu_xray import read_findings

ANALYZER = LexiconAnalyzer()
FINDINGS = read_findings()

garbage = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120)
real = st.integers(0, len(FINDINGS) - 1).map(FINDINGS.__getitem__)
mixed = st.builds(lambda a, b, sep: a + sep + b, real, garbage, st.sampled_from([" ", "\n", "", ". "]))
report = st.one_of(real, real, garbage, mixed, st.sampled_from(["", "   ", "\n\n", "XXXX.", "No", "."]))
options = st.builds(
    EditOptions,
    ops_per_rollout=st.integers(1, 4),
    tau=st.floats(0.0, 1.0),
    match=st.sampled_from(["affinity", "paper"]),
    fp_scope=st.sampled_from(["trigger", "sentence"]),
    contradictions=st.sampled_from([None, True, False]),
    seed=st.integers(0, 2**31),
)
# EDITGRPO_HYPOTHESIS_EXAMPLES=4000 for a longer search
SETTINGS = settings(max_examples=int(os.environ.get("EDITGRPO_HYPOTHESIS_EXAMPLES", "400")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(gen_text=report, ref_text=report, options=options)
@example(  # regression: a sentence inserted by one op must not be replaced by the next (tau = 0)
    gen_text=FINDINGS[0], ref_text=FINDINGS[0] + " 0",
    options=EditOptions(ops_per_rollout=2, tau=0.0, match="paper", seed=0),
)
def test_edit_invariants(gen_text, ref_text, options):
    gen, ref = ANALYZER.analyze([gen_text, ref_text])
    result = edit_report(gen, ref, options)  # never raises
    # every output sentence comes from the generated or the reference report
    assert set(result.sentences) <= set(gen.sentences) | set(ref.sentences)
    if result.changed:  # an edited report is its sentences with their end marks
        assert result.text == join_report(result.sentences)
        assert len(split_sentences(result.text)) == len(result.sentences)  # no two sentences run together
    else:  # an unedited one is the rollout as it was (normalised), even when its sentences lack end marks
        assert result.text == gen.text and result.sentences == tuple(gen.sentences)
    assert result.changed == (result.text != gen.text)
    assert result.changed == bool(result.ops)
    if result.changed:
        assert result.text, "an edit left an empty report"
    # budget: at most ops_per_rollout operations, plus the empty guard
    assert sum(op.op != "empty_guard" for op in result.ops) <= options.ops_per_rollout
    # a sentence is never touched twice
    touched = [op.old_sentence for op in result.ops if op.old_sentence]
    assert len(touched) == len(set(touched))
    added = [op.new_sentence for op in result.ops if op.new_sentence]
    assert len(added) == len(set(added)) and not set(added) & set(touched)
    assert all(op.new_sentence in ref.sentences for op in result.ops if op.new_sentence)
    if not options.contradiction_op:
        assert all(op.op != "contradiction" for op in result.ops)
    # deterministic for a seed
    assert edit_report(gen, ref, options) == result
    assert edit_report(gen, ref, options, random.Random(options.seed)) == result


@SETTINGS
@given(text=report, options=options)
def test_identical_reports_are_unchanged(text, options):
    gen, ref = ANALYZER.analyze([text, text])
    result = edit_report(gen, ref, options)
    assert not result.changed and result.ops == () and result.text == gen.text


@settings(max_examples=100, deadline=None)
@given(text=report)
def test_whitespace_and_eos_variants_are_the_same_report(text):
    """A rollout that differs from the reference only in whitespace/EOS strings is not edited."""
    gen, ref = ANALYZER.analyze([text.replace(" ", "  ") + "<|im_end|>", text])
    assert not edit_report(gen, ref).changed
    assert split_sentences(gen.text) == list(gen.sentences) or "\n" in text
