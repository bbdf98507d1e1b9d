"""The shared conversion steps on plain records: view order, priors, duplicates, options."""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from datasets_registry.pipeline import ConvertOptions, convert_studies, drop_duplicates, link_priors
from datasets_registry.records import ConversionError, LoadResult, SourceImage, SourceStudy, normalize_view, sorted_images
from swift_plugins.editgrpo.cli import main


def _images(*views: str) -> list[SourceImage]:
    return [SourceImage(Path(f"/data/{i}_{view or 'none'}.png"), normalize_view(view)) for i, view in enumerate(views)]


def _study(study_id: str, subject: str, order, n_images: int = 1, findings: str | None = "Clear lungs.") -> SourceStudy:
    return SourceStudy(study_id, subject, "train", _images(*["PA"] * n_images), findings, order=order)


def test_view_labels_are_normalised():
    assert [normalize_view(v) for v in ("Frontal", "postero_anterior", "ap", "Lateral", "LAT", "", None, "nan")] == [
        "FRONTAL", "PA", "AP", "LATERAL", "LATERAL", "UNKNOWN", "UNKNOWN", "UNKNOWN"]


def test_frontal_first_then_lateral_then_the_next_of_each():
    images = _images("SWIMMERS", "XTABLE LATERAL", "", "AP AXIAL", "LL", "AP", "PA")
    assert [i.view for i in sorted_images(images)] == ["PA", "LL", "SWIMMERS", "UNKNOWN", "AP", "XTABLE LATERAL", "AP AXIAL"]
    assert sorted_images(list(reversed(images))) == sorted_images(images)  # independent of input order


def test_prior_is_the_latest_strictly_earlier_study_with_images():
    studies = [_study("a", "p1", (20200101, 80000.0)), _study("b", "p1", (20200101, 80000.0)),
               _study("c", "p1", (20200102, 0.0), findings=None), _study("d", "p1", (20210101, 0.0)),
               _study("e", "p1", (20220101, 0.0), n_images=0), _study("f", "p1", (20230101, 0.0)),
               _study("g", "p2", (20000101, 0.0)), _study("h", "p3", None)]
    priors = {key: value.study_id for key, value in link_priors(studies).items()}
    # a/b share a date-time: neither is the other's prior (ties: the later id); c (no findings) still
    # serves as a prior; e has no images, so it is no prior (and gets none: it is skipped anyway).
    assert priors == {"c": "b", "d": "c", "f": "d"}
    explicit = _study("x", "p2", (20010101, 0.0))
    explicit.explicit_prior = _study("named", "p2", None)
    assert link_priors([*studies, explicit])["x"].study_id == "named"


def test_duplicates_are_all_dropped():
    kept, dropped = drop_duplicates([_study("a", "p", None), _study("b", "p", None), _study("a", "q", None)])
    assert [s.study_id for s in kept] == ["b"] and [s.subject_id for s in dropped] == ["p", "q"]


def test_max_images_must_be_positive(tmp_path):
    with pytest.raises(ConversionError, match="max_images"):
        convert_studies("x", LoadResult(), tmp_path, tmp_path / "out", ConvertOptions(max_images=0))


def _studies(findings: list[str | None]) -> LoadResult:
    return LoadResult([SourceStudy(f"s{i}", f"p{i}", "train", _images("PA"), text) for i, text in enumerate(findings)])


def test_writing_no_study_fails_with_the_counts(tmp_path):
    loaded = _studies([None, None, None])
    loaded.skipped["corrupt_row"] = 1
    with pytest.raises(ConversionError, match=r"x: no study written from 4 record\(s\) read \(skipped: no_findings=3, corrupt_row=1\)"):
        convert_studies("x", loaded, tmp_path, tmp_path / "out", ConvertOptions(max_images=1, placeholder_images=True, show_progress=False))
    assert not list((tmp_path / "out").glob("*.jsonl")) and not (tmp_path / "out" / "summary.json").exists()
    off = ConvertOptions(max_images=1, placeholder_images=True, show_progress=False, max_loss_fraction=1.0)
    assert convert_studies("x", loaded, tmp_path, tmp_path / "off", off).total_studies == 0  # the check turned off


def test_one_cause_taking_more_than_the_stated_fraction_fails(tmp_path, iu_findings):
    over = _studies([iu_findings[0], iu_findings[1], None, None, None])  # 3 of 5 = 60% > 50%
    options = ConvertOptions(max_images=1, placeholder_images=True, show_progress=False)
    with pytest.raises(ConversionError, match=r"3 of 5 records read \(60%\) skipped as no_findings, more than the 50% "
                                              r"allowed \(skipped: no_findings=3; 2 written\)"):
        convert_studies("x", over, tmp_path, tmp_path / "over", options)
    assert not (tmp_path / "over" / "train.jsonl").exists()
    accepted = convert_studies("x", over, tmp_path, tmp_path / "accepted", replace(options, max_loss_fraction=1.0))
    assert accepted.total_studies == 2
    assert json.loads((tmp_path / "accepted" / "summary.json").read_text())["max_loss_fraction"] == 1.0
    under = convert_studies("x", _studies([*iu_findings[:3], None, None]), tmp_path, tmp_path / "under", options)
    assert under.total_studies == 3 and under.splits["train"].skipped == {"no_findings": 2}
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConversionError, match="max_loss_fraction"):
            convert_studies("x", _studies(iu_findings[:1]), tmp_path, tmp_path / "bad", replace(options, max_loss_fraction=bad))


def test_wrong_mimic_reports_folder_exits_1_with_the_counts(tmp_path, capsys, iu_findings):
    """A wrong --reports reads as every report missing: exit 1 naming the cause, nothing written."""
    from datasets_registry.mimic_cxr import METADATA, SPLIT, study_dir

    src = tmp_path / "mimic"
    metadata, splits = [], []
    for i in range(3):
        subject, study = f"1000000{i}", f"5000000{i}"
        metadata.append({"dicom_id": f"d{i}", "subject_id": subject, "study_id": study, "ViewPosition": "PA",
                         "StudyDate": "21800101", "StudyTime": "120000"})
        splits.append({"dicom_id": f"d{i}", "study_id": study, "subject_id": subject, "split": "train"})
        report = src / study_dir(subject, study).with_suffix(".txt")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(f"FINAL REPORT\n FINDINGS: {iu_findings[i]}\n IMPRESSION: Normal.\n", encoding="utf-8")
    for name, rows in ((METADATA, metadata), (SPLIT, splits)):
        with (src / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    common = ["convert", "mimic-cxr", "--src", str(src), "--placeholder-images", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "wrong"), "--reports", str(tmp_path / "elsewhere")]) == 1
    err = capsys.readouterr().err
    assert err == ("editgrpo convert: error: mimic-cxr: no study written from 3 record(s) read "
                   "(skipped: missing_report=3); check --src and the data set's files.\n")
    assert not (tmp_path / "wrong" / "train.jsonl").exists()
