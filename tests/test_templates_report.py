"""Sentence normalisation/splitting: the one definition shared by edits, rewards and evaluation (docs/algorithm.md §2)."""
from hypothesis import given, settings, strategies as st

from templates.report import EOS_STRINGS, join_report, join_sentences, normalize, split_sentences


def test_normalize_strips_eos_and_collapses_whitespace():
    assert normalize("  Heart  is\tnormal.\n\nLungs clear.<|im_end|>") == "Heart is normal. Lungs clear."
    assert normalize("No effusion.<|endoftext|>No pneumothorax.</s>") == "No effusion. No pneumothorax."
    assert normalize("") == "" and normalize("   \n\t ") == "" and normalize(None) == ""


def test_split_on_terminator_plus_whitespace_and_newlines(iu_reports):
    uid1 = next(r for r in iu_reports if r["uid"] == "1")["findings"]
    assert split_sentences(uid1) == [
        "The cardiac silhouette and mediastinum size are within normal limits.",
        "There is no pulmonary edema.",
        "There is no focal consolidation.",
        "There are no XXXX of a pleural effusion.",
        "There is no evidence of pneumothorax.",
    ]
    assert split_sentences("Heart normal\nLungs clear") == ["Heart normal", "Lungs clear"]
    assert split_sentences("Is it enlarged? No! Stable.") == ["Is it enlarged?", "No!", "Stable."]


def test_no_split_without_whitespace_or_inside_numbers(iu_reports):
    # IU-XRay uid 4 has "...left lung apex.There are streaky..." (no space): one sentence, as specified.
    uid4 = next(r for r in iu_reports if r["uid"] == "4")["findings"]
    assert any("apex.There are streaky" in s for s in split_sentences(uid4))
    assert split_sentences("A 3.5 cm nodule.") == ["A 3.5 cm nodule."]


def test_bad_inputs():
    assert split_sentences("") == [] and split_sentences(" \n ") == [] and split_sentences(None) == []
    assert split_sentences("No terminator here") == ["No terminator here"]
    assert split_sentences("Cœur normal. Poumons clairs.") == ["Cœur normal.", "Poumons clairs."]
    assert split_sentences("".join(EOS_STRINGS)) == []
    long = " ".join(["word"] * 10_000)
    assert split_sentences(long) == [long]


def test_join_uses_single_spaces_and_skips_empties():
    assert join_sentences(["A.", "", "B."]) == "A. B."
    assert join_sentences(()) == ""


def test_control_characters_end_a_sentence_like_whitespace(iu_reports):
    """A control character (C0, C1, DEL, an ANSI colour sequence) after a full stop used to glue
    the next sentence on, so an edit of one sentence also replaced the next."""
    uid1 = next(r for r in iu_reports if r["uid"] == "1")["findings"]
    sentences = split_sentences(uid1)
    glued = (sentences[0] + "\x00 " + sentences[1] + "\x1b[31m" + sentences[2] + "\x1b[0m\r\n" + sentences[3]
             + "\x07\x7f" + sentences[4] + "\x9b")
    assert split_sentences(glued) == sentences
    assert normalize(glued) == normalize(uid1)
    assert normalize("pneumo\x00thorax\x1b[1;31m.") == "pneumo thorax ."  # never a character of the text


def test_join_report_never_loses_a_sentence_end(iu_reports):
    """Sentences split at line breaks lack their end mark; the edit engine's re-join adds "." between
    sentences (never after the last), so the edited text splits into the same sentences again."""
    assert join_report(["No pneumothorax", "Heart is enlarged."]) == "No pneumothorax. Heart is enlarged."
    assert join_report(["Is it enlarged?", "", "No!", "Stable"]) == "Is it enlarged? No! Stable"
    assert join_report(()) == ""
    uid1 = next(r for r in iu_reports if r["uid"] == "1")["findings"]
    lines = [sentence.rstrip(".") for sentence in split_sentences(uid1)]  # a rollout written one finding per line
    assert split_sentences("\n".join(lines)) == lines
    assert split_sentences(join_report(lines)) == [line + "." for line in lines[:-1]] + lines[-1:]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("ab .!?\n\t\u00a0é\x00\r\x85[m") + ["\x1b", "\x1b[31m"] + list(EOS_STRINGS)),
                max_size=40).map("".join))
def test_normalised_text_is_its_sentences_joined(text):
    """normalize(t) == join(split(t)): the analysis cache keys on the split and relies on this."""
    sentences = split_sentences(text)
    assert normalize(text) == join_sentences(sentences)
    assert all(s == normalize(s) and s for s in sentences)
    assert split_sentences(join_report(sentences)) == [s if s.endswith((".", "!", "?")) or n == len(sentences) - 1
                                                       else s + "." for n, s in enumerate(sentences)]


def test_lone_surrogates_become_replacement_characters():
    """JSON may carry "\\ud800": a lone surrogate cannot be encoded (tokenizers raise), so analysis sees U+FFFD."""
    text = "Heart normal. \ud800No effusion \udfff."
    assert split_sentences(text) == ["Heart normal.", "\ufffdNo effusion \ufffd."]
    assert normalize(text).encode("utf-8")
