"""ReXGradient-160K (rajpurkarlab, Hugging Face) from its released metadata.

Layout after `cat deid_png.part* > deid_png.tar && tar -xf deid_png.tar`:

    <src>/metadata/{train,valid,test}_metadata.json
        {"<id>": {"PatientID", "AccessionNumber", "StudyInstanceUid", "StudyDate", "StudyDescription",
                  "Indication", "Comparison", "Findings", "Impression",
                  "ImagePath": ["../deid_png/<patient>/<accession>/studies/<uid>/series/<uid>/instances/<uid>.png", ...],
                  "ImageViewPosition": ["PA", "LATERAL", ...], ...}, ...}
    <src>/deid_png/...

`{split}_metadata_view_position.json` (same records, corrected view labels) is preferred when
present; a file may also be a list of records, each with its "id". The split is the release's
(valid = validation). A record without an id is counted (`missing_id`); an id repeated in a
list, or across the split files, is ambiguous: every copy is dropped and counted
(`duplicate_study_id`). ImageViewPosition SUPINE and ERECT are frontal films; N/A is no view.
Reports come already segmented, so the Findings field is the target. Following the paper,
ReXGradient samples have no priors and studies with more than `max_images` images are dropped
(the converter default `--over-max drop`).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from datasets_registry.io import has_bad_bytes, read_json
from datasets_registry.records import ConversionError, LoadResult, SourceImage, SourceStudy, normalize_split, normalize_view
from datasets_registry.sections import clean_section

SPLIT_FILES: tuple[str, ...] = ("train", "valid", "test")
IMAGE_DIR = "deid_png"


def image_path(src: Path, relative: str) -> Path:
    """Metadata paths are relative to metadata/ ("../deid_png/..."); anchor them at <src>/deid_png."""
    parts = Path(relative.replace("\\", "/")).parts
    if IMAGE_DIR in parts:
        parts = parts[parts.index(IMAGE_DIR):]
    return src.joinpath(*(part for part in parts if part not in ("..", ".")))


def _metadata_file(src: Path, split: str) -> Path | None:
    for name in (f"{split}_metadata_view_position.json", f"{split}_metadata.json"):
        if (src / "metadata" / name).is_file():
            return src / "metadata" / name
    return None


def load(src: Path) -> LoadResult:
    files = {split: _metadata_file(src, split) for split in SPLIT_FILES}
    if not any(files.values()):
        raise ConversionError(f"{src}: expected metadata/{{train,valid,test}}_metadata.json (ReXGradient-160K)")
    names = ", ".join(path.name for path in files.values() if path)
    result = LoadResult(split_source=f"the release's train/valid/test ({names})",
                        notes=[f"layout: ReXGradient-160K metadata ({names})"])
    root = src.resolve()
    for split_name, path in files.items():
        if path is None:
            continue
        for study_id, record in _records(path):
            study = _study(root, study_id, record, normalize_split(split_name), result.skipped)
            if study is not None:
                result.studies.append(study)
    return result


def _records(path: Path) -> list[tuple[str, object]]:
    """(id, record) pairs of one metadata file, every list entry kept (repeats reach the pipeline's
    duplicate check instead of overwriting each other)."""
    records = read_json(path)
    if isinstance(records, dict):
        return [(study_id.strip(), record) for study_id, record in records.items()]
    if isinstance(records, list):
        return [(str(record.get("id") or "").strip() if isinstance(record, dict) else "", record)
                for record in records]
    raise ConversionError(f"{path}: expected an object (or a list) of study records")


def _study(root: Path, study_id: str, record, split: str, skipped: Counter) -> SourceStudy | None:
    if not isinstance(record, dict):
        skipped["corrupt_row"] += 1
        return None
    if not study_id:
        skipped["missing_id"] += 1
        return None
    paths, views = record.get("ImagePath") or [], record.get("ImageViewPosition") or []
    if isinstance(paths, str):
        paths = [paths]
    if isinstance(views, str):
        views = [views]
    if not isinstance(paths, list) or (views and len(views) != len(paths)):
        skipped["corrupt_row"] += 1
        return None
    text_fields = ("Findings", "Indication", "Comparison", "StudyDescription")
    if has_bad_bytes(*(str(record.get(name) or "") for name in text_fields)):
        skipped["non_utf8_text"] += 1
        return None
    views = views or [None] * len(paths)
    return SourceStudy(
        study_id=study_id,
        subject_id=str(record.get("PatientID") or study_id.split("_")[0]),
        split=split,
        images=[SourceImage(image_path(root, str(path)), normalize_view(None if view is None else str(view)))
                for path, view in zip(paths, views)],
        findings=clean_section(record.get("Findings")),
        indication=clean_section(record.get("Indication")),
        technique=clean_section(record.get("StudyDescription") or record.get("Technique")),
        comparison=clean_section(record.get("Comparison")),
    )
