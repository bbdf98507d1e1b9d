"""MIMIC-CXR converter on a small copy of the native layout (MIMIC-CXR-JPG CSVs + report text files)."""
from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from datasets_registry import ConversionError, convert
from datasets_registry.io import write_placeholder_image
from datasets_registry.mimic_cxr import METADATA, SPLIT, study_dir
from swift_plugins.editgrpo.cli import main as cli_main
from templates.report import normalize


@dataclass
class Study:
    subject: str
    study: str
    split: str
    date: str
    time: str
    views: list[str]
    report: str | None  # None: no report file


def _report(findings: str | None, impression: str, indication: str = "Cough.") -> str:
    body = f"                FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n\n INDICATION:  {indication}\n\n"
    body += " COMPARISON:  ___\n\n"
    if findings:
        body += f" FINDINGS:\n\n {findings}\n\n"
    return body + f" IMPRESSION:\n\n {impression}\n"


def write_mimic(root: Path, studies: list[Study], gz: bool = False, images: bool = True) -> None:
    metadata, split_rows = [], []
    for s in studies:
        for k, view in enumerate(s.views):
            dicom = f"{s.study}-{k:02d}"
            metadata.append({"dicom_id": dicom, "subject_id": s.subject, "study_id": s.study,
                             "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": view,
                             "Rows": "3056", "Columns": "2544", "StudyDate": s.date, "StudyTime": s.time})
            split_rows.append({"dicom_id": dicom, "study_id": s.study, "subject_id": s.subject, "split": s.split})
            if images:
                write_placeholder_image(root / study_dir(s.subject, s.study) / f"{dicom}.jpg")
        if s.report is not None:
            path = root / study_dir(s.subject, s.study).with_suffix(".txt")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(s.report, encoding="utf-8")
    for name, rows in ((METADATA, metadata), (SPLIT, split_rows)):
        opener = (lambda p: gzip.open(p, "wt", newline="")) if gz else (lambda p: p.open("w", newline=""))
        with opener(root / (name + (".gz" if gz else ""))) as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


@pytest.fixture
def cohort(iu_reports) -> list[Study]:
    f = [row for row in iu_reports if row["findings"].strip() and row["impression"].strip()]
    return [
        Study("10000032", "50000001", "train", "21120101", "80000.5", ["PA", "LATERAL"], _report(f[0]["findings"], f[0]["impression"])),
        # Same day, later: no FINDINGS section, so skipped, but still the prior of 50000003.
        Study("10000032", "50000002", "train", "21120101", "93000", ["AP"], _report(None, "PRIOR-ONLY IMPRESSION TEXT.")),
        Study("10000032", "50000003", "train", "21130501", "100000", ["AP", "LATERAL", "PA"], _report(f[1]["findings"], f[1]["impression"], f[1]["indication"])),
        Study("10000045", "50000010", "test", "21150101", "120000",
              ["PA", "AP", "LATERAL", "LL", "LATERAL", "AP", "", "PA"], _report(f[2]["findings"], f[2]["impression"])),
        Study("10000045", "50000011", "test", "21150102", "120000", ["LATERAL", "PA"], _report(f[3]["findings"], f[3]["impression"])),
        Study("10000099", "50000020", "validate", "21100101", "0", ["PA"], None),
    ]


def _rows(out: Path, split: str) -> dict[str, dict]:
    lines = (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["study_id"]: row for row in map(json.loads, lines)}


def test_views_priors_caps_and_skips(tmp_path, cohort):
    write_mimic(tmp_path / "src", cohort)
    summary = convert("mimic-cxr", tmp_path / "src", tmp_path / "out", show_progress=False)
    train, test = _rows(tmp_path / "out", "train"), _rows(tmp_path / "out", "test")
    assert sorted(train) == ["50000001", "50000003"] and sorted(test) == ["50000010", "50000011"]
    assert _rows(tmp_path / "out", "validation") == {}

    first = train["50000001"]
    assert first["views"] == ["PA", "LATERAL"] and first["prior_study_id"] == ""
    assert first["solution"] == normalize(cohort[0].report.split("FINDINGS:")[1].split("IMPRESSION:")[0])
    assert first["messages"][1] == {"role": "assistant", "content": first["solution"]}

    # Prior = the most recent earlier study by date + time (the same-day 09:30 one), images only.
    third = train["50000003"]
    assert third["views"] == ["PA", "LATERAL", "AP", "AP"] and third["prior_study_id"] == "50000002"
    assert "/s50000002/" in third["images"][3] and all("/s50000003/" in p for p in third["images"][:3])
    prompt = third["messages"][0]["content"]
    assert prompt.startswith("<image>" * 4) and prompt.count("<image>") == 4
    assert "Image 1: current study, PA view" in prompt and "Image 4: prior study, AP view" in prompt
    assert "PRIOR-ONLY" not in json.dumps(third)
    assert third["indication"] == normalize(cohort[2].report.split("INDICATION:")[1].split("COMPARISON:")[0])
    assert third["technique"] == "CHEST (PA AND LAT)"

    # 8 views, max 6: frontal first, a lateral right after, then the next of each family.
    big = test["50000010"]
    assert big["views"] == ["PA", "LATERAL", "UNKNOWN", "PA", "LATERAL", "AP"]
    after = test["50000011"]
    assert after["views"] == ["PA", "LATERAL", "PA", "LATERAL", "UNKNOWN", "PA"]
    assert after["prior_study_id"] == "50000010"

    assert summary.splits["train"].skipped == {"no_findings": 1}
    assert summary.unassigned_skipped == {"missing_report": 1}
    assert summary.splits["test"].truncated == 1 and summary.images_dropped_by_cap == 2
    assert (summary.splits["train"].with_prior, summary.splits["test"].with_prior) == (1, 1)
    assert summary.splits["train"].images == 6
    for rows in (train, test):
        for row in rows.values():
            assert all(Path(p).is_absolute() and Path(p).is_file() for p in row["images"])
            assert len(row["images"]) == len(row["views"]) <= 6


def test_gzipped_csvs_give_identical_output(tmp_path, cohort):
    write_mimic(tmp_path / "plain", cohort)
    write_mimic(tmp_path / "gz", cohort, gz=True)
    convert("mimic-cxr", tmp_path / "plain", tmp_path / "a", show_progress=False)
    convert("mimic-cxr", tmp_path / "gz", tmp_path / "b", show_progress=False)
    convert("mimic-cxr", tmp_path / "plain", tmp_path / "c", show_progress=False)
    for split in ("train", "validation", "test"):
        a = (tmp_path / "a" / f"{split}.jsonl").read_text()
        assert a == (tmp_path / "c" / f"{split}.jsonl").read_text()  # deterministic
        assert a.replace(str(tmp_path / "plain"), "X") == (tmp_path / "b" / f"{split}.jsonl").read_text().replace(str(tmp_path / "gz"), "X")


def test_missing_images_fail_with_the_list_or_are_skipped_and_counted(tmp_path, cohort):
    write_mimic(tmp_path / "src", cohort, images=False)
    with pytest.raises(ConversionError, match=r"14 image file\(s\) missing") as error:
        convert("mimic-cxr", tmp_path / "src", tmp_path / "out", show_progress=False)
    assert "s50000001/50000001-00.jpg" in str(error.value) and "--skip-missing" in str(error.value)
    assert not (tmp_path / "out" / "train.jsonl").exists()

    # Nothing written fails unless the check is off (datasets_registry.pipeline._check_losses).
    summary = convert("mimic-cxr", tmp_path / "src", tmp_path / "out", skip_missing=True, max_loss_fraction=1.0,
                      show_progress=False)
    assert summary.total_studies == 0 and summary.splits["train"].skipped["missing_images"] == 2
    assert summary.images_missing == 14

    placeholder = convert("mimic-cxr", tmp_path / "src", tmp_path / "ph", placeholder_images=True, show_progress=False)
    assert placeholder.total_studies == 4 and placeholder.placeholders_written == 14


def test_bad_rows_and_bytes_are_counted(tmp_path, cohort):
    write_mimic(tmp_path / "src", cohort)
    report = tmp_path / "src" / study_dir("10000045", "50000011").with_suffix(".txt")
    report.write_bytes(report.read_bytes().replace(b"IMPRESSION", b"IMPRESSION caf\xe9"))
    with (tmp_path / "src" / METADATA).open("a") as handle:
        handle.write("zz-00,10000099,50000030,CHEST,PA,1,1,not-a-date,0\n")
    with (tmp_path / "src" / SPLIT).open("a") as handle:
        handle.write("zz-00,50000030,10000099,train\nunknown-dicom,50000031,10000099,train\n")
    summary = convert("mimic-cxr", tmp_path / "src", tmp_path / "out", show_progress=False)
    assert summary.unassigned_skipped == {"missing_report": 1, "non_utf8_text": 1, "corrupt_row": 3}
    assert sorted(_rows(tmp_path / "out", "test")) == ["50000010"]


def test_r2gen_annotation_grouped_by_study_with_metadata_views(tmp_path, cohort):
    src = tmp_path / "r2gen"
    write_mimic(src, cohort)
    annotation = {"train": [], "val": [], "test": []}
    for s in cohort[:5]:
        for k in range(len(s.views)):
            rel = f"p{s.subject[:2]}/p{s.subject}/s{s.study}/{s.study}-{k:02d}.jpg"
            write_placeholder_image(src / "images" / rel)
            annotation["test" if s.split == "test" else "train"].append(
                {"id": f"{s.study}-{k:02d}", "study_id": int(s.study), "subject_id": int(s.subject),
                 "report": f"Findings of {s.study}.", "image_path": [rel], "split": s.split})
    (src / "annotation.json").write_text(json.dumps(annotation))
    summary = convert("mimic-cxr", src, tmp_path / "out", show_progress=False)
    train = _rows(tmp_path / "out", "train")
    assert sorted(train) == ["50000001", "50000002", "50000003"]  # R2Gen reports are the findings
    assert train["50000003"]["views"] == ["PA", "LATERAL", "AP", "AP"]
    assert train["50000003"]["prior_study_id"] == "50000002"
    assert train["50000003"]["solution"] == "Findings of 50000003."
    assert summary.total_studies == 5


def test_cli_prints_the_summary_and_fails_cleanly(tmp_path, cohort, capsys):
    write_mimic(tmp_path / "src", cohort)
    assert cli_main(["convert", "mimic-cxr", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
                     "--max-images", "3", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mimic-cxr: 4 studies written" in printed and "no_findings=1" in printed
    assert all(len(row["images"]) <= 3 for row in _rows(tmp_path / "out", "test").values())
    assert cli_main(["convert", "mimic-cxr", "--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_findings_under_view_titles_are_converted_not_skipped(tmp_path, iu_reports):
    """`CHEST, TWO VIEWS:` and a colon-less `PA AND LATERAL VIEWS OF THE CHEST` title the findings
    (MIT-LCP's semantics); they were counted as no_findings, the title text glued onto INDICATION."""
    rows = [row for row in iu_reports if row["findings"].strip() and row["indication"].strip()][:3]
    header = " FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n\n INDICATION:  {indication}\n\n"
    reports = [
        header + " CHEST, TWO VIEWS:\n\n {findings}\n\n IMPRESSION:  No acute process.\n",
        header + " PA AND LATERAL VIEWS OF THE CHEST\n\n {findings}\n\n IMPRESSION:  No acute process.\n",
        header + " TECHNIQUE:  Chest PA and lateral.\n\n FINDINGS:\n\n {findings}\n",
    ]
    studies = [Study("10000032", f"5000000{k}", "train", "21120101", f"{k}0000", ["PA", "LATERAL"],
                     report.format(**row)) for k, (report, row) in enumerate(zip(reports, rows))]
    write_mimic(tmp_path / "src", studies)
    summary = convert("mimic-cxr", tmp_path / "src", tmp_path / "out", show_progress=False)
    train = _rows(tmp_path / "out", "train")
    assert summary.splits["train"].skipped == {} and sorted(train) == ["50000000", "50000001", "50000002"]
    for k, row in enumerate(rows):
        assert train[f"5000000{k}"]["solution"] == normalize(row["findings"])
        assert train[f"5000000{k}"]["indication"] == normalize(row["indication"])
    # EXAMINATION and TECHNIQUE are kept apart: the prompt's TECHNIQUE is the report's TECHNIQUE
    # when there is one, else its EXAMINATION.
    assert train["50000002"]["technique"] == "Chest PA and lateral."
    assert train["50000000"]["technique"] == "CHEST (PA AND LAT)"
    assert summary.split_source == f"official ({SPLIT})"


def test_metadata_rows_without_a_split_row_are_counted(tmp_path, cohort):
    write_mimic(tmp_path / "src", cohort)
    with (tmp_path / "src" / METADATA).open("a") as handle:  # an extra view of 50000001, a study of its own
        handle.write("50000001-09,10000032,50000001,CHEST (PA AND LAT),LATERAL,3056,2544,21120101,80000.5\n"
                     "50000077-00,10000099,50000077,CHEST (PA AND LAT),PA,3056,2544,21120101,0\n")
    summary = convert("mimic-cxr", tmp_path / "src", tmp_path / "out", show_progress=False)
    assert summary.unassigned_skipped == {"missing_report": 1, "no_split_row": 2}
    assert _rows(tmp_path / "out", "train")["50000001"]["views"] == ["PA", "LATERAL"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["unassigned_skipped"]["no_split_row"] == 2
