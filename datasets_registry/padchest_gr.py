"""PadChest-GR (BIMCV grounded reports) with English sentences.

Layout of the 2024-08-19 release:

    <src>/grounded_reports_20240819.json   [{"StudyID", "ImageID", "PreviousStudyID"?, "PreviousImageID"?,
                                             "findings": [{"sentence_en", "sentence_es", "abnormal", "boxes", ...}]}]
    <src>/master_table.csv                 one row per (study, sentence): StudyID, ImageID, PatientID, split
                                           (train/validation/test), StudyDate_DICOM (YYYYMMDD), prior_study,
                                           prior_imageID, ...
    <src>/Padchest_GR_files/**/<ImageID>                         (one frontal image per study)
    <src>/PadChest_GR_progression_prior_studies/**/<prior ImageID>

FINDINGS = the study's English sentences (`sentence_en`) in their order. A finding with only
`sentence_es` would vanish from an English gold report (and the model be taught to omit it): its
study is skipped and counted (`untranslated_finding`), the summary notes how many findings.
The split is master_table.csv's. The prior of a study is the one the release names
(PreviousImageID / prior_imageID, image looked up in the prior-studies folder); failing that, the
patient's most recent earlier PadChest-GR study by StudyDate_DICOM.
The PNGs are 16-bit grayscale (I;16): the conversion points rows to 8-bit copies under
out/images_8bit/ (pipeline; each image's own range rescaled to 0..255).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from templates.report import join_sentences, normalize

from datasets_registry.io import find_file, has_bad_bytes, read_csv, read_json
from datasets_registry.records import ConversionError, LoadResult, SourceImage, SourceStudy, normalize_split

IMAGE_DIR = "Padchest_GR_files"
PRIOR_DIR = "PadChest_GR_progression_prior_studies"
VIEW = "FRONTAL"  # the grounded reports are written on frontal (PA/AP) images; the release does not say which
_EMPTY = ("", "nan", "none", "null", "false", "true", "0", "1")


def _present(value) -> str | None:
    text = str(value or "").strip()
    return None if text.lower() in _EMPTY else text


def _index_images(*folders: Path) -> dict[str, Path]:
    """file name -> path for every image below the folders (first folder wins)."""
    index: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    index.setdefault(path.name, path.resolve())
    return index


def _master_rows(path: Path, skipped: Counter) -> dict[str, dict[str, str]]:
    """StudyID -> its first master-table row (study-level fields repeat on every sentence row)."""
    studies: dict[str, dict[str, str]] = {}
    for row in read_csv(path, ("StudyID", "PatientID", "split"), skipped):
        first = studies.setdefault(row["StudyID"], row)
        if first["PatientID"] != row["PatientID"] or first["split"] != row["split"]:
            raise ConversionError(f"{path}: study {row['StudyID']} has conflicting PatientID/split rows")
    return studies


def _order(row: dict[str, str]) -> tuple[int] | None:
    date = row.get("StudyDate_DICOM") or row.get("StudyDate") or ""
    digits = "".join(ch for ch in date if ch.isdigit())[:8]
    return (int(digits),) if len(digits) == 8 else None


def load(src: Path) -> LoadResult:
    reports = sorted(src.glob("grounded_reports*.json"))
    master = find_file(src, "master_table.csv")
    if not reports or master is None:
        raise ConversionError(f"{src}: expected grounded_reports_*.json and master_table.csv (PadChest-GR)")
    result = LoadResult(split_source=f"{master.name} split column",
                        notes=[f"layout: PadChest-GR ({reports[-1].name}, {master.name}); FINDINGS from sentence_en"])
    rows = _master_rows(master, result.skipped)
    root = src.resolve()
    current_index = _index_images(root / IMAGE_DIR)
    prior_index = _index_images(root / PRIOR_DIR, root / IMAGE_DIR)
    entries = read_json(reports[-1])
    if not isinstance(entries, list):
        raise ConversionError(f"{reports[-1]}: expected a list of study records")
    untranslated = 0
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("StudyID") or not entry.get("ImageID"):
            result.skipped["corrupt_row"] += 1
            continue
        row = rows.get(str(entry["StudyID"]))
        if row is None:
            result.skipped["not_in_master_table"] += 1
            continue
        split = normalize_split(row["split"])
        if split is None:
            result.skipped["corrupt_row"] += 1
            continue
        findings = [f for f in entry.get("findings") or [] if isinstance(f, dict)]
        sentences = [normalize(str(f.get("sentence_en") or "")) for f in findings]
        if has_bad_bytes(*sentences):
            result.skipped["non_utf8_text"] += 1
            continue
        spanish_only = sum(not english and bool(normalize(str(f.get("sentence_es") or "")))
                           for f, english in zip(findings, sentences))
        if spanish_only:
            untranslated += spanish_only
            result.skipped["untranslated_finding"] += 1
            continue
        image_id = str(entry["ImageID"])
        result.studies.append(SourceStudy(
            study_id=str(entry["StudyID"]),
            subject_id=row["PatientID"],
            split=split,
            images=[SourceImage(current_index.get(image_id, root / IMAGE_DIR / image_id), VIEW)],
            findings=join_sentences([s for s in sentences if s]) or None,
            order=_order(row),
            explicit_prior=_explicit_prior(entry, row, split, root, prior_index),
        ))
    if untranslated:
        result.notes.append(f"{untranslated} finding(s) with sentence_es only: their "
                            f"{result.skipped['untranslated_finding']} studies skipped (untranslated_finding)")
    return result


def _explicit_prior(entry: dict, row: dict[str, str], split: str, root: Path, index: dict[str, Path]) -> SourceStudy | None:
    image_id = _present(entry.get("PreviousImageID")) or _present(row.get("prior_imageID"))
    if image_id is None:
        return None
    study_id = _present(entry.get("PreviousStudyID")) or _present(row.get("prior_study")) or Path(image_id).stem
    return SourceStudy(study_id=study_id, subject_id=row["PatientID"], split=split,
                       images=[SourceImage(index.get(image_id, root / PRIOR_DIR / image_id), VIEW)], findings=None)
