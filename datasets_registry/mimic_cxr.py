"""MIMIC-CXR-JPG (PhysioNet) images + MIMIC-CXR free-text reports, or R2Gen's annotation.json.

Native layout (files may be .csv or .csv.gz):

    <src>/mimic-cxr-2.0.0-metadata.csv   dicom_id, subject_id, study_id, ViewPosition, StudyDate (YYYYMMDD),
                                          StudyTime (HHMMSS[.fff]), PerformedProcedureStepDescription, ...
    <src>/mimic-cxr-2.0.0-split.csv      dicom_id, study_id, subject_id, split (train/validate/test)
    <src>/files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg
    <reports>/files/pXX/pXXXXXXXX/sXXXXXXXX.txt   (MIMIC-CXR `mimic-cxr-reports.zip`; <reports> defaults to <src>)

The split is the official split file's; a metadata row (image) without a row there is counted
(`no_split_row`). The report text is split into sections (`sections.parse_report`, MIT-LCP's
sectioner semantics: findings under a view title such as `CHEST, TWO VIEWS:` count as FINDINGS
when the report has no FINDINGS text); FINDINGS is the target, INDICATION/HISTORY and
COMPARISON go into the prompt, and TECHNIQUE, else EXAMINATION, else the metadata's
PerformedProcedureStepDescription is the prompt's TECHNIQUE. The prior of a study is the
patient's most recent earlier study by StudyDate + StudyTime.

R2Gen layout: `<src>/annotation.json` ({"train"|"val"|"test": [{"id": dicom_id, "study_id",
"subject_id", "report": FINDINGS, "image_path": ["p10/p100.../s5.../<dicom_id>.jpg"]}]}, one
entry per image or per study) with images under `<src>/images/`. When the metadata CSV is also
present, views and study dates come from it (so priors work); otherwise views are UNKNOWN and
there are no priors.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from datasets_registry.io import find_file, has_bad_bytes, read_csv, read_json, read_report_text
from datasets_registry.records import ConversionError, LoadResult, SourceImage, SourceStudy, normalize_split, normalize_view
from datasets_registry.sections import clean_section, parse_report

METADATA = "mimic-cxr-2.0.0-metadata.csv"
SPLIT = "mimic-cxr-2.0.0-split.csv"


@dataclass(frozen=True)
class _ImageMeta:
    dicom_id: str
    subject_id: str
    study_id: str
    view: str
    order: tuple[int, float]
    procedure: str


def study_dir(subject_id: str, study_id: str) -> Path:
    """files/p10/p10000032/s50414267 for subject 10000032, study 50414267."""
    return Path("files") / f"p{subject_id[:2]}" / f"p{subject_id}" / f"s{study_id}"


def _read_metadata(path: Path, skipped: Counter) -> dict[str, _ImageMeta]:
    metadata: dict[str, _ImageMeta] = {}
    for row in read_csv(path, ("dicom_id", "subject_id", "study_id", "StudyDate"), skipped,
                        columns=("ViewPosition", "StudyTime")):
        try:
            order = (int(row["StudyDate"]), float(row.get("StudyTime") or 0.0))
            int(row["subject_id"]), int(row["study_id"])
        except ValueError:
            skipped["corrupt_row"] += 1
            continue
        metadata[row["dicom_id"]] = _ImageMeta(row["dicom_id"], row["subject_id"], row["study_id"],
                                               normalize_view(row.get("ViewPosition")), order,
                                               row.get("PerformedProcedureStepDescription", ""))
    return metadata


def load(src: Path, reports: Path | None = None) -> LoadResult:
    if (src / "annotation.json").is_file():
        return _load_r2gen(src)
    metadata_csv, split_csv = find_file(src, METADATA), find_file(src, SPLIT)
    if metadata_csv is None or split_csv is None:
        raise ConversionError(f"{src}: expected {METADATA}(.gz) and {SPLIT}(.gz) (MIMIC-CXR-JPG) or annotation.json (R2Gen)")
    reports_root = (reports or src).resolve()
    result = LoadResult(split_source=f"official ({split_csv.name})",
                        notes=[f"layout: MIMIC-CXR-JPG ({metadata_csv.name}, {split_csv.name}); "
                               f"reports under {reports_root}/files"])
    metadata = _read_metadata(metadata_csv, result.skipped)
    images: dict[str, list[_ImageMeta]] = defaultdict(list)
    splits: dict[str, str] = {}
    seen: set[str] = set()
    for row in read_csv(split_csv, ("dicom_id", "study_id", "split"), result.skipped):
        meta, split = metadata.get(row["dicom_id"]), normalize_split(row["split"])
        if meta is None or split is None or meta.study_id != row["study_id"]:
            result.skipped["corrupt_row"] += 1
            continue
        if meta.dicom_id in seen:
            result.skipped["duplicate_row"] += 1
            continue
        seen.add(meta.dicom_id)
        if splits.setdefault(meta.study_id, split) != split:
            raise ConversionError(f"{split_csv}: study {meta.study_id} is in two splits")
        images[meta.study_id].append(meta)
    if unlisted := len(metadata.keys() - seen):
        result.skipped["no_split_row"] += unlisted
    root = src.resolve()
    for study_id, metas in images.items():
        subject_id = metas[0].subject_id
        sections, problem = _read_sections(reports_root / study_dir(subject_id, study_id).with_suffix(".txt"))
        if problem:
            result.skipped[problem] += 1
            continue
        result.studies.append(SourceStudy(
            study_id=study_id,
            subject_id=subject_id,
            split=splits[study_id],
            images=[SourceImage(root / study_dir(subject_id, study_id) / f"{m.dicom_id}.jpg", m.view)
                    for m in sorted(metas, key=lambda m: m.dicom_id)],
            findings=sections.findings,
            indication=sections.indication,
            technique=sections.technique or sections.examination or clean_section(metas[0].procedure),
            comparison=sections.comparison,
            order=min(m.order for m in metas),
        ))
    return result


def _read_sections(path: Path):
    """(sections, None) or (None, skip reason) for one report file."""
    try:
        text = read_report_text(path)
    except FileNotFoundError:
        return None, "missing_report"
    except UnicodeDecodeError:
        return None, "non_utf8_text"
    return parse_report(text), None


def _load_r2gen(src: Path) -> LoadResult:
    result = LoadResult(split_source="R2Gen annotation.json (its train/val/test)",
                        notes=["layout: R2Gen annotation.json (its train/val/test split)"])
    metadata_csv = find_file(src, METADATA)
    metadata = _read_metadata(metadata_csv, result.skipped) if metadata_csv else {}
    if metadata_csv:
        result.notes.append(f"views and study dates from {metadata_csv.name}")
    annotation = read_json(src / "annotation.json")
    if not isinstance(annotation, dict):
        raise ConversionError(f"{src / 'annotation.json'}: expected an object with train/val/test lists")
    image_root = (src / "images").resolve()
    grouped: dict[str, dict] = {}
    for key, entries in annotation.items():
        split = normalize_split(key)
        if split is None or not isinstance(entries, list):
            raise ConversionError(f"{src / 'annotation.json'}: unknown split key {key!r}")
        for entry in entries:
            if not _valid_r2gen_entry(entry):
                result.skipped["corrupt_row"] += 1
                continue
            if has_bad_bytes(entry["report"]):
                result.skipped["non_utf8_text"] += 1
                continue
            study_id = str(entry["study_id"])
            study = grouped.setdefault(study_id, {"subject_id": str(entry["subject_id"]), "split": split,
                                                  "report": entry.get("report"), "paths": set()})
            if study["split"] != split or study["report"] != entry.get("report"):
                raise ConversionError(f"{src / 'annotation.json'}: study {study_id} appears with different "
                                      "split or report text")
            study["paths"].update(str(path) for path in entry["image_path"])
    for study_id, study in grouped.items():
        metas = [metadata.get(Path(path).stem) for path in sorted(study["paths"])]
        result.studies.append(SourceStudy(
            study_id=study_id,
            subject_id=study["subject_id"],
            split=study["split"],
            images=[SourceImage(image_root / path, meta.view) if meta else SourceImage(image_root / path)
                    for path, meta in zip(sorted(study["paths"]), metas)],
            findings=clean_section(study["report"]),
            order=min(m.order for m in metas) if metas and all(metas) else None,
        ))
    return result


def _valid_r2gen_entry(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("image_path"), list) and isinstance(entry.get("report"), str)
            and str(entry.get("study_id", "")).isdigit() and str(entry.get("subject_id", "")).isdigit())
