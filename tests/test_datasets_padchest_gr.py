"""PadChest-GR converter on a small copy of the release layout (grounded-report JSON + master table)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets_registry import ConversionError, convert
from datasets_registry.io import write_placeholder_image
from datasets_registry.padchest_gr import IMAGE_DIR, PRIOR_DIR
from datasets_registry.pipeline import EIGHT_BIT_DIR
from templates.report import split_sentences

MASTER_COLUMNS = ["StudyID", "ImageID", "label", "prior_study", "prior_imageID", "sentence_en", "sentence_es",
                  "split", "PatientID", "PatientSex_DICOM", "StudyDate_DICOM", "StudyDate", "PatientAge"]


def _entry(study: str, sentences: list[str], spanish: str = "(es)", **extra) -> dict:
    findings = [{"sentence_en": s, "sentence_es": spanish, "abnormal": i == 0, "boxes": [[0.1, 0.2, 0.3, 0.4]] if i == 0 else [],
                 "labels": ["label"], "locations": ["right"], "progression": None} for i, s in enumerate(sentences)]
    return {"StudyID": study, "ImageID": f"{study}_img.png", "findings": findings, **extra}


def _write(root: Path, entries: list[dict], master: list[dict]) -> None:
    root.mkdir(parents=True)
    (root / "grounded_reports_20240819.json").write_text(json.dumps(entries), encoding="utf-8")
    with (root / "master_table.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MASTER_COLUMNS)
        writer.writeheader()
        for row in master:
            writer.writerow({column: row.get(column, "") for column in MASTER_COLUMNS})
    for entry in entries:
        write_placeholder_image(root / IMAGE_DIR / "PadChest_GR" / entry["ImageID"])


@pytest.fixture
def release(tmp_path, iu_findings) -> tuple[Path, list[str]]:
    sentences = [split_sentences(text) for text in iu_findings[:6]]
    entries = [
        _entry("S1", sentences[0]),
        _entry("S2", sentences[1]),
        _entry("S3", sentences[2], PreviousStudyID="PS3", PreviousImageID="prior3.png"),
        _entry("S4", sentences[3]),
        _entry("S5", sentences[4]),  # not in the master table
        _entry("S6", ["", "  "], spanish=""),  # no sentence at all
        _entry("S8", sentences[5]), _entry("S8", sentences[5]),  # duplicate study id
    ]
    master = [
        {"StudyID": "S1", "PatientID": "P1", "split": "train", "StudyDate_DICOM": "20150101", "prior_study": "False"},
        {"StudyID": "S1", "PatientID": "P1", "split": "train", "StudyDate_DICOM": "20150101", "prior_study": "False"},
        {"StudyID": "S2", "PatientID": "P1", "split": "train", "StudyDate_DICOM": "20160304"},
        {"StudyID": "S3", "PatientID": "P2", "split": "test", "StudyDate_DICOM": "20170101", "prior_study": "True"},
        {"StudyID": "S4", "PatientID": "P3", "split": "validation", "StudyDate_DICOM": "20170101",
         "prior_study": "True", "prior_imageID": "prior4.png"},
        {"StudyID": "S6", "PatientID": "P4", "split": "test", "StudyDate_DICOM": "20170101"},
        {"StudyID": "S8", "PatientID": "P5", "split": "test", "StudyDate_DICOM": "20170101"},
    ]
    root = tmp_path / "PadChest-GR"
    _write(root, entries, master)
    for name in ("prior3.png", "prior4.png"):
        write_placeholder_image(root / PRIOR_DIR / "PadChest_GR_progression" / name)
    return root, [" ".join(s) for s in sentences]


def _rows(out: Path, split: str) -> dict[str, dict]:
    lines = (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["study_id"]: row for row in map(json.loads, lines)}


def test_sentences_priors_and_skips(tmp_path, release):
    root, reports = release
    summary = convert("padchest-gr", root, tmp_path / "out", show_progress=False)
    train, validation, test = (_rows(tmp_path / "out", split) for split in ("train", "validation", "test"))
    assert train["S1"]["solution"] == reports[0] and train["S1"]["prior_study_id"] == ""
    assert train["S1"]["views"] == ["FRONTAL"] and train["S1"]["images"][0].endswith("PadChest_GR/S1_img.png")
    # No prior named by the release: the patient's previous PadChest-GR study by date.
    assert train["S2"]["prior_study_id"] == "S1" and train["S2"]["images"][1] == train["S1"]["images"][0]
    assert "Image 2: prior study, FRONTAL view" in train["S2"]["messages"][0]["content"]
    assert reports[0] not in train["S2"]["messages"][0]["content"]
    # Priors named by the release come from the prior-studies folder.
    assert test["S3"]["prior_study_id"] == "PS3" and test["S3"]["images"][1].endswith(f"{PRIOR_DIR}/PadChest_GR_progression/prior3.png")
    assert validation["S4"]["prior_study_id"] == "prior4" and validation["S4"]["images"][1].endswith("prior4.png")
    assert sorted(test) == ["S3"]
    assert summary.unassigned_skipped == {"not_in_master_table": 1}
    assert summary.splits["test"].skipped == {"no_findings": 1, "duplicate_study_id": 2}
    assert sum(s.with_prior for s in summary.splits.values()) == 3


def test_max_images_one_drops_priors_and_missing_prior_is_listed(tmp_path, release):
    root, _ = release
    convert("padchest-gr", root, tmp_path / "one", max_images=1, show_progress=False)
    assert all(row["prior_study_id"] == "" and len(row["images"]) == 1
               for split in ("train", "validation", "test") for row in _rows(tmp_path / "one", split).values())
    (root / PRIOR_DIR / "PadChest_GR_progression" / "prior3.png").unlink()
    with pytest.raises(ConversionError, match="prior3.png"):
        convert("padchest-gr", root, tmp_path / "out", show_progress=False)
    summary = convert("padchest-gr", root, tmp_path / "skip", skip_missing=True, show_progress=False)
    s3 = _rows(tmp_path / "skip", "test")["S3"]
    assert s3["prior_study_id"] == "" and len(s3["images"]) == 1 and summary.images_missing == 1


def test_layout_errors_are_explicit(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="grounded_reports"):
        convert("padchest-gr", tmp_path / "empty", tmp_path / "out", show_progress=False)
    root = tmp_path / "broken"
    _write(root, [_entry("S1", ["Cardiomegaly."])], [{"StudyID": "S1", "PatientID": "P1", "split": "train"}])
    (root / "grounded_reports_20240819.json").write_bytes(b'[{"StudyID": "S1", "findings": [{"sentence_en": "caf\xe9"}]}]')
    with pytest.raises(ConversionError, match="not valid UTF-8"):
        convert("padchest-gr", root, tmp_path / "out", show_progress=False)


def _write_16bit_png(path: Path, shape: tuple[int, int], seed: int) -> np.ndarray:
    """A PadChest-like PNG: 16-bit grayscale (PIL mode I;16), 12-bit-range values 800..3900 (dark
    background, brighter body, two darker lung fields), not square."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    body = np.exp(-(((cols - shape[1] / 2) / (0.35 * shape[1])) ** 2))
    lungs = np.exp(-(((cols - shape[1] * 0.32) / (0.1 * shape[1])) ** 2 + ((rows - shape[0] * 0.45) / (0.25 * shape[0])) ** 2))
    lungs += np.exp(-(((cols - shape[1] * 0.68) / (0.1 * shape[1])) ** 2 + ((rows - shape[0] * 0.45) / (0.25 * shape[0])) ** 2))
    signal = body - 0.5 * lungs + 0.02 * np.random.default_rng(seed).standard_normal(shape)
    signal = (signal - signal.min()) / (signal.max() - signal.min())
    pixels = np.rint(800 + 3100 * signal).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
        assert image.convert("RGB").getextrema() == ((255, 255),) * 3  # what swift's loader would see: all white
    return pixels


def test_16bit_pngs_are_used_through_8bit_copies_that_keep_their_contrast(tmp_path, release):
    root, _ = release
    current = root / IMAGE_DIR / "PadChest_GR" / "S3_img.png"
    prior = root / PRIOR_DIR / "PadChest_GR_progression" / "prior3.png"
    originals = {current: _write_16bit_png(current, (300, 240), 0), prior: _write_16bit_png(prior, (280, 256), 1)}
    out = tmp_path / "out"
    summary = convert("padchest-gr", root, out, show_progress=False)
    images = [Path(p) for p in _rows(out, "test")["S3"]["images"]]
    assert images == [out.resolve() / EIGHT_BIT_DIR / source.relative_to(root) for source in originals]
    for copy, pixels in zip(images, originals.values()):
        with Image.open(copy) as image:
            assert image.mode == "L" and image.size == pixels.shape[::-1]
            rgb = np.asarray(image.convert("RGB"))  # as swift / qwen_vl_utils load it
        # The image's own range 800..3900 becomes 0..255 linearly: contrast kept, order of values kept.
        expected = np.rint((pixels.astype(np.float64) - pixels.min()) * 255 / (pixels.max() - pixels.min()))
        assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1 and rgb[..., 0].std() > 30
        assert len(np.unique(rgb)) > 200
    # 8-bit sources are used in place; the summary says how many copies and how much disk they take.
    assert _rows(out, "train")["S1"]["images"][0] == str((root / IMAGE_DIR / "PadChest_GR" / "S1_img.png").resolve())
    assert summary.images_8bit == 2 and summary.images_8bit_bytes == sum(p.stat().st_size for p in images)
    written = json.loads((out / "summary.json").read_text())
    assert written["images_8bit"] == {"count": 2, "bytes": summary.images_8bit_bytes, "dir": EIGHT_BIT_DIR}
    # A second conversion reuses the copies (newer than their sources) instead of re-encoding them.
    stamps = [p.stat().st_mtime_ns for p in images]
    convert("padchest-gr", root, out, show_progress=False)
    assert [p.stat().st_mtime_ns for p in images] == stamps


def test_spanish_only_finding_skips_its_study_and_is_counted(tmp_path, iu_findings):
    english = split_sentences(iu_findings[10])
    effusion = {"sentence_en": "", "sentence_es": "Derrame pleural izquierdo.", "abnormal": True,
                "boxes": [[0.6, 0.5, 0.9, 0.9]], "labels": ["pleural effusion"], "locations": ["left"]}
    untranslated = _entry("S1", english)
    untranslated["findings"].append(effusion)
    root = tmp_path / "PadChest-GR"
    _write(root, [untranslated, _entry("S2", split_sentences(iu_findings[11]))],
           [{"StudyID": "S1", "PatientID": "P1", "split": "train", "StudyDate_DICOM": "20150101"},
            {"StudyID": "S2", "PatientID": "P2", "split": "train", "StudyDate_DICOM": "20150101"}])
    summary = convert("padchest-gr", root, tmp_path / "out", show_progress=False)
    # The English report without the effusion would be a wrong gold report: the study is not written.
    assert list(_rows(tmp_path / "out", "train")) == ["S2"]
    assert summary.unassigned_skipped == {"untranslated_finding": 1}
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["unassigned_skipped"] == {"untranslated_finding": 1}
    assert written["split_source"] == "master_table.csv split column"
    assert any("FINDINGS from sentence_en" in note for note in written["notes"])
    assert "1 finding(s) with sentence_es only: their 1 studies skipped (untranslated_finding)" in written["notes"]
