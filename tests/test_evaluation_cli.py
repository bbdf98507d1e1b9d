"""`editgrpo eval` end to end on result files in swift infer's format, built from real IU-XRay reports."""
from __future__ import annotations

import csv
import errno
import json
import os

import pytest
from test_evaluation import swift_row, write_jsonl

from swift_plugins.editgrpo.cli import main
from swift_plugins.editgrpo.evaluation import outputs, table
from swift_plugins.editgrpo.evaluation.results import read_run, settings_path
from templates.report import join_sentences, split_sentences

N_STUDIES = 12


@pytest.fixture(scope="module")
def studies(iu_reports):
    rows = [r for r in iu_reports if len(split_sentences(r["findings"])) >= 3 and r["impression"].strip()]
    return rows[:N_STUDIES]


@pytest.fixture()
def two_runs(tmp_path, studies):
    """'impression' answers with the impression; 'partial' with the findings minus the last sentence."""
    impression = [swift_row(r["uid"], r["impression"], r["findings"]) for r in studies]
    partial = [
        swift_row(r["uid"], join_sentences(split_sentences(r["findings"])[:-1]), r["findings"]) for r in reversed(studies)
    ]
    return write_jsonl(tmp_path / "impression.jsonl", impression), write_jsonl(tmp_path / "partial.jsonl", partial)


def test_two_runs_in_one_table_csv_json_and_plot(tmp_path, two_runs, studies, monkeypatch, capsys):
    for name in ("EDITGRPO_GREEN_DIR", "EDITGRPO_GREEN_ENDPOINT", "EDITGRPO_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "eval"
    code = main(["eval", *map(str, two_runs), "--out", str(out), "--metrics", "bleu4,rouge_l,green", "--no-progress"])
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    runs = document["runs"]
    assert list(runs) == ["impression", "partial"]
    # the near-copy of the reference beats the impression on both lexical metrics
    assert runs["partial"]["rouge_l"] > runs["impression"]["rouge_l"] > 0
    assert runs["partial"]["bleu4"] > runs["impression"]["bleu4"]
    assert runs["partial"]["avg"] is None and runs["partial"]["green"] is None  # no clinical metric ran
    assert document["counts"]["partial"] == {"n": N_STUDIES, "n_empty_hyp": 0, "n_empty_ref": 0, "n_dropped": 0}
    assert document["settings"]["clean"] == "none" and document["settings"]["metrics"] == ["bleu4", "rouge_l"]
    assert any(note.startswith("GREEN skipped") for note in document["notes"])

    table = (out / "metrics.md").read_text()
    header = table.splitlines()[0]
    labels = ["Mi-14", "Ma-14", "Mi-5", "Ma-5", "RadGraph", "RaTE", "GREEN", "Avg", "BLEU-4", "ROUGE-L"]
    assert [cell.strip() for cell in header.strip("|").split("|")] == ["Run", *labels]
    assert "GREEN skipped" in table and "cleaning: `none`" in table
    assert table in capsys.readouterr().out

    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run"] for row in rows] == ["impression", "partial"]
    assert float(rows[1]["rouge_l"]) == pytest.approx(runs["partial"]["rouge_l"], abs=1e-6)

    samples = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * N_STUDIES
    # 'partial' was written in reverse order and is aligned to the first run's ids
    assert [s["id"] for s in samples[N_STUDIES:]] == [r["uid"] for r in studies]
    assert sum(s["rouge_l"] for s in samples[:N_STUDIES]) / N_STUDIES == pytest.approx(runs["impression"]["rouge_l"])

    png = (out / "metrics.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_clean_reference_is_applied_to_both_sides_and_recorded(tmp_path, studies):
    repeated = [swift_row(r["uid"], r["findings"] + " " + r["findings"], r["findings"] + " Indication: cough.") for r in studies]
    path = write_jsonl(tmp_path / "repeat.jsonl", repeated)
    scores = {}
    for clean in ("none", "reference"):
        out = tmp_path / clean
        assert main(["eval", str(path), "--out", str(out), "--metrics", "rouge_l", "--clean", clean, "--no-progress"]) == 0
        document = json.loads((out / "metrics.json").read_text())
        assert document["settings"]["clean"] == clean
        scores[clean] = document["runs"]["repeat"]["rouge_l"]
    assert scores["reference"] == pytest.approx(1.0)  # repetition and the indication are cleaned away
    assert scores["none"] < 0.9


def test_bad_inputs_fail_clearly_or_are_counted(tmp_path, two_runs, studies, capsys):
    impression, partial = two_runs
    fewer = write_jsonl(
        tmp_path / "fewer.jsonl", [swift_row(r["uid"], r["impression"], r["findings"]) for r in studies[:-2]]
    )
    out = tmp_path / "out"
    assert main(["eval", str(impression), str(fewer), "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 1
    assert "runs cover different ids" in capsys.readouterr().err and not out.exists()

    code = main(["eval", str(impression), str(fewer), "--out", str(out), "--metrics", "rouge_l",
                 "--on-mismatch", "intersect", "--no-progress"])
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["counts"]["impression"]["n_dropped"] == 2 and document["counts"]["fewer"]["n"] == N_STUDIES - 2
    assert any("2 pairs left out" in note for note in document["notes"])

    duplicated = write_jsonl(tmp_path / "dup.jsonl", [swift_row("s1", "a b", "c d")] * 2)
    assert main(["eval", str(duplicated), "--out", str(out), "--metrics", "rouge_l"]) == 1
    assert "duplicate ids" in capsys.readouterr().err

    plain = write_jsonl(tmp_path / "plain.jsonl", [{"id": "1", "hyp": "", "ref": "Lungs are clear."},
                                                   {"id": "2", "hyp": "Lungs are clear.", "ref": "Lungs are clear."}])
    assert main(["eval", str(plain), "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["counts"]["plain"]["n_empty_hyp"] == 1
    assert document["runs"]["plain"]["rouge_l"] == pytest.approx(0.5)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    same_stem = [str(write_jsonl(tmp_path / d / "result.jsonl", [{"id": "1", "hyp": "a b", "ref": "a b"}])) for d in "ab"]
    assert main(["eval", *same_stem, "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 0
    assert list(json.loads((out / "metrics.json").read_text())["runs"]) == ["a/result", "b/result"]

    with pytest.raises(SystemExit, match="unknown metrics"):
        main(["eval", str(plain), "--out", str(out), "--metrics", "bleu"])
    with pytest.raises(SystemExit, match="2 names for 1 result files"):
        main(["eval", str(plain), "--out", str(out), "--names", "a,b"])


def test_rules_backend_on_iu_xray_is_sane_reproducible_and_labels_each_reference_once(tmp_path, iu_reports, monkeypatch):
    from rewards.rules import RuleCheXpertScorer

    rows = [r for r in iu_reports if r["findings"].strip() and r["impression"].strip()][:60]
    runs = {
        "impression": [{"id": r["uid"], "hyp": r["impression"], "ref": r["findings"]} for r in rows],
        "copy": [{"id": r["uid"], "hyp": r["findings"], "ref": r["findings"]} for r in rows],
    }
    paths = [str(write_jsonl(tmp_path / f"{name}.jsonl", data)) for name, data in runs.items()]
    labelled: list[str] = []
    original = RuleCheXpertScorer.label
    monkeypatch.setattr(RuleCheXpertScorer, "label", lambda self, texts: labelled.extend(texts) or original(self, texts))
    documents = []
    for attempt in range(2):
        out = tmp_path / f"out{attempt}"
        assert main(["eval", *paths, "--out", str(out), "--backend", "rules", "--metrics",
                     "chexbert,radgraph,ratescore,rouge_l", "--no-progress"]) == 0
        documents.append(json.loads((out / "metrics.json").read_text()))
        if attempt == 0:
            # references are labelled once for both runs; the copy run's hypotheses are those same texts
            assert len(labelled) == len({r["findings"] for r in rows}) + len({r["impression"] for r in rows})
    assert documents[0]["runs"] == documents[1]["runs"]  # reproducible
    impression, copy = documents[0]["runs"]["impression"], documents[0]["runs"]["copy"]
    clinical = ["chexbert_micro_f1_14", "chexbert_macro_f1_14", "chexbert_micro_f1_5", "chexbert_macro_f1_5",
                "radgraph_partial_f1", "ratescore"]
    assert copy["chexbert_micro_f1_14"] == 1.0 and copy["rouge_l"] == pytest.approx(1.0)
    for key in clinical:
        assert 0.0 <= impression[key] <= copy[key] <= 1.0, key
    assert impression["radgraph_partial_f1"] < copy["radgraph_partial_f1"]
    assert impression["avg"] == pytest.approx(sum(impression[key] for key in clinical) / 6)
    assert documents[0]["avg_over"]["copy"] == clinical
    assert "PROXIES" in (tmp_path / "out0" / "metrics.md").read_text()


@pytest.mark.slow
def test_real_backend_runs_the_model_scorers_on_tiny_random_models(tmp_path, scorer_models_dir, studies, capsys, monkeypatch):
    for name in ("EDITGRPO_MODELS_DIR", "EDITGRPO_DEVICE", "EDITGRPO_BATCH_SIZE"):  # the CLI sets them; restored after
        monkeypatch.delenv(name, raising=False)
    data = {
        "impression": [{"id": r["uid"], "hyp": r["impression"], "ref": r["findings"]} for r in studies],
        "copy": [{"id": r["uid"], "hyp": r["findings"], "ref": r["findings"]} for r in studies],
    }
    paths = [str(write_jsonl(tmp_path / f"{name}.jsonl", rows)) for name, rows in data.items()]
    out = tmp_path / "out"
    args = ["eval", *paths, "--out", str(out), "--backend", "real", "--metrics", "chexbert,radgraph,ratescore",
            "--device", "cpu", "--batch-size", "4", "--no-progress"]
    assert main([*args, "--models-dir", str(scorer_models_dir)]) == 0
    document = json.loads((out / "metrics.json").read_text())
    keys = ["chexbert_micro_f1_14", "chexbert_macro_f1_14", "chexbert_micro_f1_5", "chexbert_macro_f1_5",
            "radgraph_partial_f1", "ratescore"]
    for name in data:
        row = document["runs"][name]
        assert all(0.0 <= row[key] <= 1.0 for key in keys), row
        assert row["avg"] == pytest.approx(sum(row[key] for key in keys) / len(keys))
    # identical texts get identical labels/graphs/entities whatever the weights
    samples = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    copies = [s for s in samples if s["run"] == "copy"]
    # RaTEScore of a text against itself: 0.5 without entities, else near 1 (below 1 only when the random
    # NER gives one surface text two types, which upstream's formula then penalises slightly)
    assert all(s["ratescore"] == 0.5 or 0.9 <= s["ratescore"] <= 1.0 + 1e-6 for s in copies)
    assert all(s["radgraph_partial_f1"] in (0.0, 1.0) for s in copies)
    assert "Backend: `real`; cleaning: `none`" in (out / "metrics.md").read_text()

    missing = tmp_path / "no_models"
    missing.mkdir()
    (out / "metrics.json").unlink()
    assert main([*args, "--models-dir", str(missing)]) == 1
    error = capsys.readouterr().err
    assert "metric chexbert" in error and "chexbert.pth" in error and not (out / "metrics.json").exists()


def test_dataset_columns_are_attached_only_when_every_row_matches(tmp_path, studies):
    from swift_plugins.editgrpo.evaluation.results import attach_dataset_columns

    data = [{"messages": [{"role": "user", "content": "<image>findings?"}, {"role": "assistant", "content": r["findings"]}],
             "images": ["/x.png"], "solution": r["findings"], "study_id": r["uid"], "split": "test"} for r in studies[:4]]
    data_path = write_jsonl(tmp_path / "test.jsonl", data)
    swift_rows = [{"response": "x", "labels": r["findings"], "logprobs": None, "messages": [], "images": []}
                  for r in studies[:4]]
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", swift_rows[::-1])
    before = shuffled.read_text()
    assert "row 0" in attach_dataset_columns(shuffled, data_path) and shuffled.read_text() == before
    short = write_jsonl(tmp_path / "short.jsonl", swift_rows[:3])
    assert "3 result rows for 4" in attach_dataset_columns(short, data_path)
    swift_rows[1]["response"] = "Heart normal.\u2028Lungs clear.\x85"  # unescaped by ensure_ascii=False, not line ends
    ordered = tmp_path / "ordered.jsonl"
    ordered.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in swift_rows), encoding="utf-8")
    assert attach_dataset_columns(ordered, data_path) is None
    assert read_run(ordered).ids == [r["uid"] for r in studies[:4]]


@pytest.mark.slow
def test_infer_script_and_eval_on_real_swift_infer_output(tmp_path, tiny_model_dir, monkeypatch):
    import os
    import subprocess
    from pathlib import Path

    from datasets_registry.synthetic import generate

    data = generate(tmp_path / "data", n_train=0, n_test=3)
    result = tmp_path / "results" / "tiny.jsonl"
    script = Path(__file__).resolve().parents[1] / "run" / "infer.sh"
    env = {**os.environ, "MAX_PIXELS": "12544", "MAX_NEW_TOKENS": "12", "HF_HUB_OFFLINE": "1"}
    command = ["bash", str(script), "--model", str(tiny_model_dir), "--data", str(data.test), "--out", str(result)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in result.read_text().splitlines()]
    assert len(rows) == 3 and {"response", "labels", "messages", "images", "study_id", "solution"} <= set(rows[0])
    assert [row["study_id"] for row in rows] == [json.loads(line)["study_id"] for line in data.test.read_text().splitlines()]
    settings = json.loads(settings_path(result).read_text())
    assert settings["temperature"] == 0.0 and settings["max_new_tokens"] == 12 and settings["rows"] == 3

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "would append" in again.stderr  # never appends a second run

    out = tmp_path / "eval"
    assert main(["eval", str(result), "--out", str(out), "--backend", "rules",
                 "--metrics", "chexbert,radgraph,ratescore,bleu4,rouge_l", "--no-progress"]) == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["sources"]["tiny"]["decoding"]["max_new_tokens"] == 12
    assert document["counts"]["tiny"]["n"] == 3
    assert document["runs"]["tiny"]["avg"] is not None


def test_evaluate_script_defaults_to_the_reference_cleaning(tmp_path, two_runs):
    import os
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "run" / "evaluate.sh"
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(script), "--out", str(out), *map(str, two_runs), "--metrics", "rouge_l", "--no-progress"],
        env={**os.environ, "BACKEND": "rules"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["clean"] == "reference" and settings["backend"] == "rules"
    assert "| impression |" in done.stdout


def test_bad_out_fails_before_any_scoring(tmp_path, two_runs, monkeypatch, capsys):
    """A --out that cannot be a folder used to fail only after everything was scored."""
    scored = []
    real = table.evaluate_runs
    monkeypatch.setattr(table, "evaluate_runs", lambda *args, **kwargs: scored.append(1) or real(*args, **kwargs))
    taken = tmp_path / "taken.txt"
    taken.write_text("precious")
    for out in (taken, taken / "eval"):
        assert main(["eval", *map(str, two_runs), "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"editgrpo eval: error: {out}: ") and err.count("\n") == 1, err
    assert scored == [] and taken.read_text() == "precious"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(table, "evaluate_runs", interrupted)
    out = tmp_path / "new" / "eval"
    with pytest.raises(KeyboardInterrupt):
        main(["eval", *map(str, two_runs), "--out", str(out), "--metrics", "rouge_l", "--no-progress"])
    assert not (tmp_path / "new").exists()  # the folders made for the outputs are removed again


def test_outputs_are_replaced_together_or_not_at_all(tmp_path, two_runs, monkeypatch, capsys):
    """A failure while writing (here: a full disk at the plot) used to leave the new metrics.json,
    csv, per_sample and md next to the old plot; now the earlier outputs stay as they were."""
    out = tmp_path / "eval"
    assert main(["eval", str(two_runs[0]), "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert sorted(before) == sorted(outputs.OUTPUT_FILES.values())

    def full_disk(result, path):
        path.write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(outputs, "plot_runs", full_disk)
    assert main(["eval", *map(str, two_runs), "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no staging folder left either
    monkeypatch.undo()
    assert main(["eval", *map(str, two_runs), "--out", str(out), "--metrics", "rouge_l", "--no-progress"]) == 0
    assert sorted(os.listdir(out)) == sorted(before)
    assert list(json.loads((out / "metrics.json").read_text())["runs"]) == ["impression", "partial"]
