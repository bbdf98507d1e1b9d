"""Evaluation's pure parts: CheXbert corpus aggregation, Avg, BLEU/ROUGE, cleaning, reading and aligning runs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewards.chexbert import CONDITIONS, CONDITIONS_5, binary_labels, corpus_f1, pair_f1
from swift_plugins.editgrpo.evaluation.columns import average_clinical
from swift_plugins.editgrpo.evaluation.results import EvalInputError, Pair, Run, align_runs, read_run, settings_path
from swift_plugins.editgrpo.evaluation.runners import RougeRunner
from swift_plugins.editgrpo.evaluation.table import EvalSettings, evaluate_runs
from swift_plugins.editgrpo.evaluation.text import clean_reference_style
from templates.report import split_sentences
from swift_plugins.editgrpo.evaluation.lexical import corpus_bleu, rouge_l, tokenize

BLANK, POS, NEG, UNC = 0, 1, 2, 3


def classes(**by_name: int) -> list[int]:
    """A CheXbert class row (14 heads) from label names with spaces as underscores."""
    row = [BLANK] * len(CONDITIONS)
    for name, value in by_name.items():
        row[CONDITIONS.index(name.replace("_", " "))] = value
    return row


# Three studies; hand counts below. Uncertain Edema (ref 1) and uncertain effusion (hyp 2) count as positive.
REF_CLASSES = [
    classes(Cardiomegaly=POS, Edema=UNC),
    classes(Pleural_Effusion=POS, Lung_Opacity=NEG),
    classes(No_Finding=POS),
]
HYP_CLASSES = [
    classes(Cardiomegaly=POS, Edema=NEG),
    classes(Pleural_Effusion=UNC, Lung_Opacity=POS),
    classes(No_Finding=POS, Support_Devices=POS),
]


def corpus(ref_classes, hyp_classes):
    return corpus_f1(binary_labels(np.array(hyp_classes)), binary_labels(np.array(ref_classes)))


def test_chexbert_corpus_f1_matches_hand_counts_with_uncertain_as_positive():
    metrics = corpus(REF_CLASSES, HYP_CLASSES)
    # 14 labels: TP = Cardiomegaly, Pleural Effusion, No Finding; FP = Lung Opacity, Support Devices; FN = Edema.
    assert metrics["chexbert_micro_f1_14"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    # per-label F1 is 1 for the three TP labels, 0 for the other eleven (0/0 counts as 0).
    assert metrics["chexbert_macro_f1_14"] == pytest.approx(3 / 14)
    # 5 labels: Cardiomegaly TP, Pleural Effusion TP, Edema FN; Consolidation and Atelectasis absent.
    assert metrics["chexbert_micro_f1_5"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    assert metrics["chexbert_macro_f1_5"] == pytest.approx(2 / 5)


def test_uncertain_is_positive_and_negative_is_not():
    assert binary_labels(np.array([BLANK, POS, NEG, UNC])).tolist() == [0, 1, 0, 1]
    # Had uncertain been negative: the Edema FN disappears and the effusion TP becomes an FN
    # (TP 2, FP 2, FN 1) instead of TP 3, FP 2, FN 1.
    as_negative = lambda rows: (np.asarray(rows) == POS).astype(np.int64)  # noqa: E731
    assert corpus_f1(as_negative(HYP_CLASSES), as_negative(REF_CLASSES))["chexbert_micro_f1_14"] == pytest.approx(
        2 * 2 / (2 * 2 + 2 + 1)
    )


def test_five_label_subset_is_the_papers_five():
    assert CONDITIONS_5 == ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")
    ref = np.zeros((2, 14), dtype=np.int64)
    hyp = np.zeros((2, 14), dtype=np.int64)
    ref[:, CONDITIONS.index("Pneumothorax")] = 1  # outside the five: must not touch the 5-label numbers
    hyp[0, CONDITIONS.index("Atelectasis")] = 1
    ref[0, CONDITIONS.index("Atelectasis")] = 1
    metrics = corpus_f1(hyp, ref)
    assert metrics["chexbert_micro_f1_5"] == 1.0
    assert metrics["chexbert_macro_f1_5"] == pytest.approx(1 / 5)
    assert metrics["chexbert_micro_f1_14"] == pytest.approx(2 / (2 + 2))


def test_micro_pools_counts_macro_averages_labels():
    ref = np.zeros((3, 14), dtype=np.int64)
    hyp = np.zeros((3, 14), dtype=np.int64)
    ref[:, 0] = hyp[:, 0] = 1  # label 0 right three times
    ref[2, 1] = 1  # label 1 missed once
    metrics = corpus_f1(hyp, ref)
    assert metrics["chexbert_micro_f1_14"] == pytest.approx(6 / 7)  # TP 3, FN 1
    assert metrics["chexbert_macro_f1_14"] == pytest.approx((1.0 + 0.0) / 14)


def test_per_pair_micro_f1_is_zero_when_neither_side_has_a_positive():
    ref = binary_labels(np.array(REF_CLASSES + [classes()]))
    hyp = binary_labels(np.array(HYP_CLASSES + [classes()]))
    assert [pair_f1(h, r)[2] for h, r in zip(hyp, ref)] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0.0])


def test_avg_is_over_the_clinical_metrics_present_only():
    values = {
        "chexbert_micro_f1_14": 0.5, "chexbert_macro_f1_14": 0.3, "chexbert_micro_f1_5": 0.6,
        "chexbert_macro_f1_5": 0.4, "radgraph_partial_f1": 0.2, "ratescore": 0.5, "green": None,
        "bleu4": 0.9, "rouge_l": 0.9,  # extras never enter Avg
    }
    avg, over = average_clinical(values)
    assert avg == pytest.approx((0.5 + 0.3 + 0.6 + 0.4 + 0.2 + 0.5) / 6)
    assert "green" not in over and "bleu4" not in over and len(over) == 6
    avg_with_green, _ = average_clinical({**values, "green": 0.35})
    assert avg_with_green == pytest.approx((0.5 + 0.3 + 0.6 + 0.4 + 0.2 + 0.5 + 0.35) / 7)
    assert average_clinical({"bleu4": 0.3}) == (None, [])


def test_bleu4_pools_counts_over_the_corpus_with_the_brevity_penalty():
    hyp = ["the heart is normal"]
    ref = ["The heart is normal in size."]
    assert corpus_bleu(hyp, ref) == pytest.approx(math.exp(1 - 6 / 4))  # all n-grams match; BP only
    hyps = ["No acute cardiopulmonary abnormality.", "Heart size normal."]
    refs = ["No acute cardiopulmonary abnormality.", "Heart size is normal."]
    # n-gram matches/totals pooled: 7/7, 4/5, 2/3, 1/1; lengths 7 vs 8.
    expected = math.exp(1 - 8 / 7) * (1 * 0.8 * (2 / 3) * 1) ** 0.25
    assert corpus_bleu(hyps, refs) == pytest.approx(expected)
    assert corpus_bleu(["pleural effusion"], ["no pneumothorax"]) == 0.0
    assert corpus_bleu([""], ["heart normal"]) == 0.0


def test_rouge_l_uses_lcs_with_beta_1_2():
    # LCS("a b c", "a c") = 2: P = 2/3, R = 1.
    precision, recall, beta2 = 2 / 3, 1.0, 1.2**2
    assert rouge_l("a b c", "a c") == pytest.approx((1 + beta2) * precision * recall / (recall + beta2 * precision))
    assert rouge_l("Lungs are clear.", "lungs are clear") == pytest.approx(1.0)
    assert rouge_l("", "lungs are clear") == 0.0


def test_reference_cleaning_on_real_reports(iu_findings):
    cases = [f for f in iu_findings if len(split_sentences(f)) >= 3][:50]
    assert cases
    for findings in cases:
        cleaned = clean_reference_style(findings)
        assert clean_reference_style(cleaned) == cleaned  # idempotent
        # repeated text and anything after "Indication:" go away
        assert clean_reference_style(findings + "\n\n" + findings) == cleaned
        assert clean_reference_style(findings + " Indication: chest pain, rule out pneumonia.") == cleaned
        for sentence in split_sentences(cleaned):
            assert len(tokenize(sentence)) >= 2 and sentence[-1] in ".!?"


def test_reference_cleaning_rules_by_example():
    text = (
        "The heart is normal in size.  Normal.\nThe heart size is normal in size. "
        "No pleural effusion or pneumothorax. No pleural effusion. Lungs are clear"
    )
    # "Normal." has < 2 words; sentence 3 has sentence 1's word set; "No pleural effusion" is
    # contained in sentence 4 (3/3 > 0.9, Jaccard only 3/5); a missing final period is added.
    assert clean_reference_style(text) == (
        "The heart is normal in size. No pleural effusion or pneumothorax. Lungs are clear."
    )
    # 9 of 10 words shared: Jaccard 9/11 > 0.8 catches it although containment is only 0.9.
    seen = "There is no focal consolidation, pleural effusion or pneumothorax seen."
    identified = "There is no focal consolidation, pleural effusion or pneumothorax identified."
    assert clean_reference_style(f"{seen} {identified}") == seen
    # 8 of 10 shared (Jaccard 8/12, containment 0.8): both kept.
    other = "There is no focal consolidation, pleural thickening or pneumothorax identified."
    assert clean_reference_style(f"{seen} {other}") == f"{seen} {other}"
    assert clean_reference_style("   ") == ""
    # only the word "indication:" starts the cut, not "contraindication:"
    assert clean_reference_style("No contraindication: patient stable. Heart size normal.") == (
        "No contraindication: patient stable. Heart size normal.")


def swift_row(study_id, response, findings, **extra):
    """One row as `swift infer` writes it (pipelines/infer/infer.py `_batch_infer`)."""
    prompt = "<image><image>You are a radiology assistant...\nINDICATION: cough"
    return {
        "response": response,
        "labels": findings,
        "logprobs": None,
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ],
        "images": [{"bytes": None, "path": f"/data/{study_id}_0.png"}, {"bytes": None, "path": f"/data/{study_id}_1.png"}],
        "solution": findings,
        "study_id": study_id,
        "split": "test",
        **extra,
    }


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_read_swift_result_rows_and_recorded_settings(tmp_path, iu_reports):
    rows = [r for r in iu_reports if r["findings"].strip() and r["impression"].strip()][:4]
    path = write_jsonl(tmp_path / "sft.jsonl", [swift_row(r["uid"], r["impression"], r["findings"]) for r in rows])
    settings_path(path).write_text(json.dumps({"temperature": 0.0}))
    run = read_run(path)
    assert run.name == "sft" and run.format == "swift" and run.settings == {"temperature": 0.0}
    assert run.pairs[0] == Pair(rows[0]["uid"], rows[0]["impression"], rows[0]["findings"])
    # without a solution column the gold assistant turn (swift's `labels`) is the reference
    no_solution = [{k: v for k, v in swift_row(r["uid"], "x", r["findings"]).items() if k != "solution"} for r in rows]
    assert read_run(write_jsonl(tmp_path / "b.jsonl", no_solution)).pairs[1].ref == rows[1]["findings"]
    # rows without any id are matched by position
    anonymous = [{k: v for k, v in swift_row(r["uid"], "x", r["findings"]).items() if k != "study_id"} for r in rows]
    assert read_run(write_jsonl(tmp_path / "c.jsonl", anonymous)).ids == ["row0", "row1", "row2", "row3"]


def test_bad_input_files_give_errors_naming_the_lines(tmp_path):
    ok = swift_row("s1", "Lungs are clear.", "The lungs are clear.")
    missing_ref = {**swift_row("s2", "Heart normal.", ""), "labels": None}
    with pytest.raises(EvalInputError, match=r"1 of 2 rows have no reference report \(lines 2\)"):
        read_run(write_jsonl(tmp_path / "a.jsonl", [ok, missing_ref]))
    with pytest.raises(EvalInputError, match="duplicate ids.*s1.*appends"):
        read_run(write_jsonl(tmp_path / "b.jsonl", [ok, ok]))
    with pytest.raises(EvalInputError, match="plain rows need an `id`"):
        read_run(write_jsonl(tmp_path / "c.jsonl", [{"hyp": "a", "ref": "b"}]))
    (tmp_path / "d.jsonl").write_text(json.dumps(ok) + "\n{not json\n")
    with pytest.raises(EvalInputError, match=r"d.jsonl:2: not JSON"):
        read_run(tmp_path / "d.jsonl")
    with pytest.raises(EvalInputError, match="no such result file"):
        read_run(tmp_path / "absent.jsonl")
    with pytest.raises(EvalInputError, match="no rows"):
        read_run(write_jsonl(tmp_path / "e.jsonl", []))


def run_of(name, pairs):
    return Run(name, f"{name}.jsonl", [Pair(*p) for p in pairs], "plain")


def test_align_runs_errors_on_mismatched_ids_or_intersects_and_counts():
    a = run_of("a", [("1", "x", "r1"), ("2", "y", "r2"), ("3", "z", "r3")])
    b = run_of("b", [("3", "z", "r3"), ("1", "x", "r1"), ("4", "w", "r4")])
    with pytest.raises(EvalInputError, match="a: 1 ids not in every run.*b: 1 ids"):
        align_runs([a, b])
    aligned = align_runs([a, b], on_mismatch="intersect")
    assert [run.ids for run in aligned.runs] == [["1", "3"], ["1", "3"]]  # first run's order
    assert aligned.dropped == {"a": 1, "b": 1}
    other_ref = run_of("c", [("1", "x", "r1"), ("2", "y", "DIFFERENT"), ("3", "z", "r3")])
    with pytest.raises(EvalInputError, match="different references for 1 ids"):
        align_runs([a, other_ref])
    with pytest.raises(EvalInputError, match="unique"):
        align_runs([a, a])


def test_empty_hypotheses_are_scored_and_counted_not_dropped(iu_reports):
    rows = [r for r in iu_reports if r["findings"].strip()][:6]
    pairs = [(r["uid"], r["findings"] if i % 2 else "", r["findings"]) for i, r in enumerate(rows)]
    result = evaluate_runs(
        [run_of("half-empty", pairs)], EvalSettings(("rouge_l",), "rules", "none"), {"rouge_l": RougeRunner()},
        progress=False,
    )
    assert result.counts["half-empty"]["n_empty_hyp"] == 3 and result.counts["half-empty"]["n"] == 6
    assert result.table["half-empty"]["rouge_l"] == pytest.approx(0.5)  # three 1.0s and three 0.0s
    assert any("3 of 6 hypotheses are empty" in note for note in result.notes)
    assert len(result.per_sample) == 6


def test_scoring_in_progress_chunks_gives_the_same_numbers_as_one_call(iu_reports, monkeypatch):
    import rewards
    from swift_plugins.editgrpo.evaluation import runners as evaluation
    from swift_plugins.editgrpo.evaluation.runners import model_runners

    rows = [r for r in iu_reports if r["findings"].strip() and r["impression"].strip()][:40]
    hyps, refs = [r["impression"] for r in rows], [r["findings"] for r in rows]
    results = {}
    for chunk in (1000, 7):
        monkeypatch.setattr(evaluation, "PROGRESS_CHUNK", chunk)
        runners = model_runners(rewards.build_scorers(("chexbert", "radgraph", "ratescore"), backend="rules"))
        done: list[int] = []
        results[chunk] = {name: runner.run(hyps, refs, done.append) for name, runner in runners.items()}
        assert sum(done) == 3 * len(rows) and max(done) <= chunk  # progress reported per chunk
    for name in results[7]:
        assert results[7][name].corpus == pytest.approx(results[1000][name].corpus)
        assert results[7][name].per_sample == results[1000][name].per_sample
