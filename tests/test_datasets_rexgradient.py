"""ReXGradient-160K converter on a small copy of its released metadata + deid_png layout."""
from __future__ import annotations

import json
from pathlib import Path

from datasets_registry import convert
from datasets_registry.io import write_placeholder_image
from templates.report import normalize


def _study(root: Path, patient: str, accession: str, views: list[str], findings: str, date: str = "20200101") -> dict:
    paths = []
    for k, _ in enumerate(views):
        rel = f"../deid_png/{patient}/{accession}/studies/1.2.{accession}/series/1.3.{k}/instances/1.4.{k}.png"
        write_placeholder_image(root / "metadata" / rel)
        paths.append(rel)
    return {"PatientID": patient, "AccessionNumber": accession, "StudyInstanceUid": f"1.2.{accession}",
            "StudyDate": date, "StudyDescription": "XR CHEST 2V", "PatientSex": "F", "PatientAge": "061Y",
            "Indication": "Shortness of breath.", "Comparison": "None.", "Findings": findings,
            "Impression": "No acute process.", "ImagePath": paths, "ImageViewPosition": views}


def _rows(out: Path, split: str) -> dict[str, dict]:
    lines = (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["study_id"]: row for row in map(json.loads, lines)}


def test_views_drop_over_six_no_priors_and_bad_records(tmp_path, iu_findings):
    src = tmp_path / "ReXGradient-160K"
    (src / "metadata").mkdir(parents=True)
    f = iu_findings
    train = {
        "pGRDNA_1_1": _study(src, "pGRDNA", "A1", ["LATERAL", "POSTERO_ANTERIOR"], f[0], "20200101"),
        "pGRDNA_1_2": _study(src, "pGRDNA", "A2", ["AP"], f[1], "20210101"),  # later study: still no prior
        "pGRDNB_2_1": _study(src, "pGRDNB", "B1", ["PA", "LATERAL", "AP", "LATERAL", "AP", "PA", "LL"], f[2]),
        "pGRDNC_3_1": _study(src, "pGRDNC", "C1", ["PA"], float("nan")),  # pandas-style NaN: no findings
        "pGRDND_4_1": {**_study(src, "pGRDND", "D1", ["PA", "LATERAL"], f[3]), "ImageViewPosition": ["PA"]},
    }
    valid = {"pGRDNE_5_1": _study(src, "pGRDNE", "E1", ["AP", "LATERAL", "PA"], f[4])}
    (src / "metadata" / "train_metadata.json").write_text(json.dumps(train))
    (src / "metadata" / "valid_metadata.json").write_text(json.dumps(valid))
    summary = convert("rexgradient", src, tmp_path / "out", show_progress=False)

    rows = _rows(tmp_path / "out", "train")
    assert sorted(rows) == ["pGRDNA_1_1", "pGRDNA_1_2"]
    first = rows["pGRDNA_1_1"]
    assert first["views"] == ["PA", "LATERAL"] and first["prior_study_id"] == ""
    assert first["images"][0] == str((src / "deid_png/pGRDNA/A1/studies/1.2.A1/series/1.3.1/instances/1.4.1.png").resolve())
    assert first["solution"] == normalize(f[0]) and first["technique"] == "XR CHEST 2V"
    assert first["indication"] == "Shortness of breath." and first["subject_id"] == "pGRDNA"
    assert rows["pGRDNA_1_2"]["prior_study_id"] == ""  # the paper uses no ReXGradient priors
    assert _rows(tmp_path / "out", "validation")["pGRDNE_5_1"]["views"] == ["PA", "LATERAL", "AP"]
    assert summary.splits["train"].skipped == {"too_many_images": 1, "no_findings": 1}
    assert summary.unassigned_skipped == {"corrupt_row": 1}  # ImagePath/ImageViewPosition length mismatch
    assert _rows(tmp_path / "out", "test") == {}


def test_over_max_can_truncate_instead(tmp_path, iu_findings):
    src = tmp_path / "rex"
    (src / "metadata").mkdir(parents=True)
    study = _study(src, "pGRDNB", "B1", ["LATERAL", "PA", "AP", "LATERAL", "AP", "PA", "LL"], iu_findings[0])
    (src / "metadata" / "test_metadata.json").write_text(json.dumps({"pGRDNB_2_1": study}))
    summary = convert("rexgradient", src, tmp_path / "out", over_max="truncate", show_progress=False)
    row = _rows(tmp_path / "out", "test")["pGRDNB_2_1"]
    assert row["views"] == ["PA", "LATERAL", "PA", "LATERAL", "AP", "LL"]
    assert summary.images_dropped_by_cap == 1


def test_supine_and_erect_are_frontal_and_na_is_no_view(tmp_path, iu_findings):
    src = tmp_path / "rex"
    (src / "metadata").mkdir(parents=True)
    records = {"pGRDNF_6_1": _study(src, "pGRDNF", "F1", ["LATERAL", "N/A", "SUPINE"], iu_findings[0]),
               "pGRDNG_7_1": _study(src, "pGRDNG", "G1", ["LATERAL", "ERECT"], iu_findings[1])}
    (src / "metadata" / "test_metadata.json").write_text(json.dumps(records))
    convert("rexgradient", src, tmp_path / "out", show_progress=False)
    rows = _rows(tmp_path / "out", "test")
    assert rows["pGRDNF_6_1"]["views"] == ["SUPINE", "LATERAL", "UNKNOWN"]
    assert "Image 3: current study, view not recorded." in rows["pGRDNF_6_1"]["messages"][0]["content"]
    assert rows["pGRDNG_7_1"]["views"] == ["ERECT", "LATERAL"]
    two = convert("rexgradient", src, tmp_path / "two", max_images=2, over_max="truncate", show_progress=False)
    assert _rows(tmp_path / "two", "test")["pGRDNF_6_1"]["views"] == ["SUPINE", "LATERAL"]
    assert two.images_dropped_by_cap == 1


def test_list_metadata_repeated_and_missing_ids_are_counted(tmp_path, iu_findings):
    """A list-form file: a repeated id is dropped and counted (not one copy silently kept), and
    every record without an id is counted."""
    src = tmp_path / "rex"
    (src / "metadata").mkdir(parents=True)
    f = iu_findings
    records = [{"id": "pGRDNA_1_1", **_study(src, "pGRDNA", "A1", ["PA"], f[0])},
               {"id": "pGRDNA_1_1", **_study(src, "pGRDNA", "A9", ["PA"], f[1])},
               *({"id": f"pGRDNH_{k}_1", **_study(src, f"pGRDNH{k}", f"H{k}", ["PA", "LATERAL"], f[2 + k])}
                 for k in range(6)),
               _study(src, "pGRDNB", "B1", ["PA"], f[8]), {"id": "", **_study(src, "pGRDNC", "C1", ["PA"], f[9])},
               "not a record"]
    (src / "metadata" / "train_metadata.json").write_text(json.dumps(records))
    summary = convert("rexgradient", src, tmp_path / "out", show_progress=False)
    assert sorted(_rows(tmp_path / "out", "train")) == [f"pGRDNH_{k}_1" for k in range(6)]
    assert summary.splits["train"].skipped == {"duplicate_study_id": 2}
    assert summary.unassigned_skipped == {"missing_id": 2, "corrupt_row": 1}
    assert summary.split_source == "the release's train/valid/test (train_metadata.json)"
