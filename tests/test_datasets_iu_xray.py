"""IU-XRay converter: the real Kaggle CSV pair (with placeholder images) and small bad-input copies."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from datasets_registry import ConversionError, convert
from datasets_registry.io import write_placeholder_image
from datasets_registry.iu_xray import BUNDLED_DIR as IU_XRAY_DIR, hashed_split
from swift_plugins.editgrpo.cli import main
from templates.report import normalize


def _rows(out: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def real_conversion(tmp_path_factory, iu_reports):
    out = tmp_path_factory.mktemp("iu_real")
    summary = convert("iu-xray", IU_XRAY_DIR, out, placeholder_images=True, show_progress=False)
    return out, summary


def test_real_csvs_convert_completely(real_conversion, iu_reports):
    out, summary = real_conversion
    rows = [row for split in ("train", "validation", "test") for row in _rows(out, split)]
    projections = Counter(r["uid"] for r in csv.DictReader((IU_XRAY_DIR / "indiana_projections.csv").open()))
    with_findings = {row["uid"]: row for row in iu_reports if row["findings"].strip()}
    two_views = {uid: row for uid, row in with_findings.items() if projections[uid] >= 2}
    # Every report is either a sample or a counted skip; every sample is a two-view report with findings.
    assert len(iu_reports) == 3851 and len(two_views) == 2955  # R2Gen's IU-XRay: 2,955 studies
    assert summary.total_studies + sum(summary.skipped_total().values()) == len(iu_reports)
    assert summary.skipped_total() == {"no_findings": len(iu_reports) - len(with_findings),
                                       "too_few_images": len(with_findings) - len(two_views)}
    assert sorted(row["study_id"] for row in rows) == sorted(two_views)
    for row in rows:
        source = with_findings[row["study_id"]]
        assert row["solution"] == normalize(source["findings"]) == row["messages"][1]["content"]
        assert row["comparison"] == normalize(source["comparison"])
        assert len(row["images"]) == 2 and row["prior_study_id"] == ""
        # No nulls: a column that is null in the first block of a jsonl file cannot hold text later (HF json).
        assert all(isinstance(row[key], str) for key in ("indication", "technique", "comparison", "prior_study_id"))
        assert row["views"][0] == "FRONTAL" or "FRONTAL" not in row["views"]
        assert row["messages"][0]["content"].count("<image>") == len(row["images"])
        # the gold-guided peers' privileged prompt: the student's, then the gold findings
        assert row["teacher_prompt"].startswith(row["messages"][0]["content"] + "\n")
        assert row["teacher_prompt"].count("<image>") == len(row["images"]) and row["solution"] in row["teacher_prompt"]
        assert all(Path(p).is_file() for p in row["images"])
    # Studies with 3+ images keep a frontal + lateral pair.
    big = [row for row in rows if projections[row["study_id"]] > 2]
    assert big and sum(summary.splits[s].truncated for s in summary.splits) == len(big)
    assert sum(row["views"] == ["FRONTAL", "LATERAL"] for row in big) > 0.9 * len(big)
    print(summary.table())


def test_hashed_split_is_seeded_and_close_to_7_1_2(real_conversion, iu_reports):
    out, summary = real_conversion
    sizes = {name: split.studies for name, split in summary.splits.items()}
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.7) < 0.03 and abs(sizes["test"] / total - 0.2) < 0.03
    assert all(row["split"] == "test" for row in _rows(out, "test"))
    uids = [row["uid"] for row in iu_reports]
    assert [hashed_split(uid) for uid in uids] == [hashed_split(uid, 0) for uid in uids]
    assert sum(hashed_split(uid, 0) != hashed_split(uid, 1) for uid in uids) > 0.3 * len(uids)


def _write_kaggle(root: Path, reports: list[list[str]], projections: list[list[str]], raw_tail: bytes = b"") -> None:
    root.mkdir(parents=True)
    with (root / "indiana_reports.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        writer.writerows(reports)
    with (root / "indiana_reports.csv").open("ab") as handle:
        handle.write(raw_tail)
    with (root / "indiana_projections.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "filename", "projection"])
        writer.writerows(projections)
    for _, filename, _ in projections:
        write_placeholder_image(root / "images" / "images_normalized" / filename)


def test_bad_rows_duplicates_and_view_caps(tmp_path, iu_findings):
    f = iu_findings
    reports = [
        ["1", "normal", "normal", "Xray Chest PA and Lateral", "Cough.", "None.", f[0], "Normal."],
        ["2", "normal", "normal", "Chest, 2 views", "", "", f[1], "Normal."],
        ["2", "normal", "normal", "Chest, 2 views", "", "", f[2], "Normal."],  # duplicate uid: ambiguous
        ["3", "normal", "normal", "Chest", "", "", "", "Impression only."],
        ["4", "normal", "normal", "Chest", "", "", f[3], "Normal.", "extra field"],  # corrupt row
        ["5", "normal", "normal", "Chest", "", "", f[4], "Normal."],  # no images
    ]
    projections = [["1", "1_IM-1-3001.dcm.png", "Lateral"], ["1", "1_IM-1-4001.dcm.png", "Frontal"],
                   ["1", "1_IM-1-5001.dcm.png", "Frontal"], ["2", "2_IM-2-1001.dcm.png", "Frontal"],
                   ["3", "3_IM-3-1001.dcm.png", "Frontal"]]
    _write_kaggle(tmp_path / "src", reports, projections, raw_tail=b'6,normal,normal,Chest,,,Caf\xe9 lungs.,Normal.\n')
    summary = convert("iu-xray", tmp_path / "src", tmp_path / "out", show_progress=False)
    rows = {row["study_id"]: row for split in ("train", "validation", "test") for row in _rows(tmp_path / "out", split)}
    assert list(rows) == ["1"]
    assert rows["1"]["views"] == ["FRONTAL", "LATERAL"]  # 3 views, max 2: frontal + lateral
    assert rows["1"]["images"][1].endswith("1_IM-1-3001.dcm.png")
    assert rows["1"]["technique"] == "Xray Chest PA and Lateral" and rows["1"]["indication"] == "Cough."
    assert summary.unassigned_skipped == {"corrupt_row": 1, "non_utf8_text": 1}
    assert summary.skipped_total() == {"corrupt_row": 1, "non_utf8_text": 1, "duplicate_study_id": 2,
                                       "no_findings": 1, "no_images": 1}


def test_r2gen_annotation_keeps_its_split(tmp_path, iu_findings):
    src = tmp_path / "r2gen"
    annotation = {"train": [], "val": [], "test": []}
    for i, split in enumerate(["train", "val", "test", "test"]):
        case = f"CXR{i + 1}_IM-{i:04d}"
        paths = [f"{case}/0.png", f"{case}/1.png"]
        for path in paths:
            write_placeholder_image(src / "images" / path)
        annotation[split].append({"id": case, "report": iu_findings[i], "image_path": paths, "split": split})
    annotation["test"].append({"id": "CXR9_IM-9", "report": iu_findings[9]})  # no image_path: corrupt
    lone_surrogate = {"id": "CXR8_IM-8", "report": iu_findings[8] + " \ud800", "image_path": ["CXR1_IM-0000/0.png"]}
    annotation["train"].append(lone_surrogate)  # a JSON escape that is not text
    (src / "annotation.json").write_text(json.dumps(annotation))
    summary = convert("iu-xray", src, tmp_path / "out", show_progress=False)
    assert {name: s.studies for name, s in summary.splits.items()} == {"train": 1, "validation": 1, "test": 2}
    assert summary.unassigned_skipped == {"corrupt_row": 1}
    assert summary.splits["train"].skipped == {"non_utf8_text": 1}
    test_rows = _rows(tmp_path / "out", "test")
    assert [row["study_id"] for row in test_rows] == ["CXR3_IM-0002", "CXR4_IM-0003"]
    assert test_rows[0]["solution"] == normalize(iu_findings[2]) and test_rows[0]["views"] == ["UNKNOWN", "UNKNOWN"]


def _bundled_rows(name: str) -> list[dict[str, str]]:
    with (IU_XRAY_DIR / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_r2gen_split_is_used_with_the_kaggle_csvs_context(tmp_path, iu_reports):
    """annotation.json beside the Kaggle CSVs: R2Gen's split and reports, the CSVs' INDICATION,
    COMPARISON and technique joined by uid through the image file names."""
    src = tmp_path / "iu"
    for name in ("indiana_reports.csv", "indiana_projections.csv"):
        _write_rows(src / name, _bundled_rows(name))
    cases: dict[str, str] = {}  # R2Gen id -> uid, built the way R2Gen names its cases
    for row in _bundled_rows("indiana_projections.csv"):
        cases.setdefault("CXR" + row["filename"].split("-")[0] + "-" + row["filename"].split("-")[1], row["uid"])
    by_uid = {row["uid"]: row for row in iu_reports}
    chosen = [case for case, uid in cases.items() if by_uid[uid]["findings"] and by_uid[uid]["indication"]][:12]
    # R2Gen's split, not the hash's: test studies the hash would put in train.
    splits = {case: ("test" if hashed_split(cases[case]) == "train" else "train") for case in chosen}
    annotation = {"train": [], "val": [], "test": []}
    for case in chosen:
        paths = [f"{case}/0.png", f"{case}/1.png"]
        annotation[splits[case]].append({"id": case, "report": by_uid[cases[case]]["findings"], "image_path": paths,
                                         "split": splits[case]})
    annotation["val"].append({"id": "CXR99999_IM-9999", "report": by_uid[cases[chosen[0]]]["findings"],
                              "image_path": ["CXR99999_IM-9999/0.png", "CXR99999_IM-9999/1.png"], "split": "val"})
    (src / "annotation.json").write_text(json.dumps(annotation), encoding="utf-8")
    out = tmp_path / "out"
    summary = convert("iu-xray", src, out, placeholder_images=True, show_progress=False)
    rows = {row["study_id"]: row for split in ("train", "validation", "test") for row in _rows(out, split)}
    assert sorted(rows) == sorted([*chosen, "CXR99999_IM-9999"])
    assert sum(split == "test" for split in splits.values()) >= 3
    for case in chosen:
        source = by_uid[cases[case]]
        assert rows[case]["split"] == splits[case]
        assert rows[case]["indication"] == normalize(source["indication"]) != ""
        assert rows[case]["comparison"] == normalize(source["comparison"])
        assert rows[case]["technique"] == normalize(source["image"])
        assert f"INDICATION: {normalize(source['indication'])}" in rows[case]["messages"][0]["content"]
    assert rows["CXR99999_IM-9999"]["indication"] == ""  # no Kaggle row: R2Gen's study without context
    written = json.loads((out / "summary.json").read_text())
    assert written["split_source"] == summary.split_source == "R2Gen annotation.json (train/val/test)"
    assert f"context (indication, technique, comparison): indiana_reports.csv joined by uid, " \
           f"{len(chosen)} of {len(chosen) + 1} studies" in written["notes"]


def test_kaggle_split_source_and_truncated_reports_csv(tmp_path, iu_reports):
    """Projections whose uid has no report row (a truncated indiana_reports.csv) are counted; a
    file that lost most of its rows fails with the counts instead of converting a remnant."""
    projections = _bundled_rows("indiana_projections.csv")
    for kept, name in ((3000, "most"), (1000, "few")):
        _write_rows(tmp_path / name / "indiana_reports.csv", iu_reports[:kept])
        _write_rows(tmp_path / name / "indiana_projections.csv", projections)
    summary = convert("iu-xray", tmp_path / "most", tmp_path / "out", placeholder_images=True, show_progress=False)
    assert summary.unassigned_skipped == {"no_report_row": len(iu_reports) - 3000}
    assert summary.total_studies + sum(summary.skipped_total().values()) == len(iu_reports)
    assert summary.split_source == "sha256 hash of uid, seed 0, train:validation:test = 7:1:2"
    with pytest.raises(ConversionError, match=rf"{len(iu_reports) - 1000} of {len(iu_reports)} records read .* "
                                              r"skipped as no_report_row, more than the 50% allowed"):
        convert("iu-xray", tmp_path / "few", tmp_path / "out_few", placeholder_images=True, show_progress=False)
    assert not (tmp_path / "out_few" / "train.jsonl").exists()


def test_utf16_csvs_are_read_and_unmarked_utf16_is_named(tmp_path, iu_reports, capsys):
    reports, uids = iu_reports[:60], {row["uid"] for row in iu_reports[:60]}
    projections = [row for row in _bundled_rows("indiana_projections.csv") if row["uid"] in uids]
    for encoding in ("utf-8", "utf-16", "utf-16-le"):  # utf-16: with a byte-order mark (Excel's "Unicode text")
        _write_rows(tmp_path / encoding / "indiana_reports.csv", reports, encoding)
        _write_rows(tmp_path / encoding / "indiana_projections.csv", projections, encoding)
    converted = {}
    for encoding in ("utf-8", "utf-16"):
        convert("iu-xray", tmp_path / encoding, tmp_path / f"out-{encoding}", placeholder_images=True, show_progress=False)
        converted[encoding] = [{key: row[key] for key in ("study_id", "solution", "indication", "comparison", "views")}
                               for split in ("train", "validation", "test") for row in _rows(tmp_path / f"out-{encoding}", split)]
    assert converted["utf-16"] == converted["utf-8"] and len(converted["utf-8"]) > 30
    assert main(["convert", "iu-xray", "--src", str(tmp_path / "utf-16-le"), "--out", str(tmp_path / "out-le")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("editgrpo convert: error: ") and "UTF-16 or UTF-32 without a byte-order mark" in err
    assert "missing column" not in err and "Traceback" not in err
