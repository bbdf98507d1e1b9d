"""IU-XRay (Open-I, Indiana University) in either of its two common distributions.

* Kaggle "Chest X-rays (Indiana University)": `indiana_reports.csv` (uid, MeSH, Problems, image,
  indication, comparison, findings, impression), `indiana_projections.csv` (uid, filename,
  projection = Frontal/Lateral) and `images/images_normalized/<filename>`. The CSV columns are
  the report sections already; `image` (e.g. "Xray Chest PA and Lateral") is the technique.
  There is no official split: a study goes to train/validation/test by a seeded hash of its uid
  in the proportions 7:1:2 (R2Gen's ratio). Studies need two views (docs/algorithm.md §8; one-view studies
  are skipped and counted): the 2,955 two-view studies with findings are R2Gen's 2,955, split
  here 2,049/320/586 against R2Gen's 2,069/296/590 (the paper's 2,365 train+validation / 590 test).
* R2Gen `annotation.json`: {"train"|"val"|"test": [{"id": "CXR2384_IM-0942", "report": FINDINGS,
  "image_path": ["CXR2384_IM-0942/0.png", ...], "split": ...}]} with images under `images/`.
  Its split is used as is; views are not recorded there (UNKNOWN).

IU-XRay has no patient identifiers or dates, so there are no priors.
"""
from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

from datasets_registry.io import find_file, read_csv, read_json
from datasets_registry.records import ConversionError, LoadResult, SourceImage, SourceStudy, normalize_split, normalize_view
from datasets_registry.sections import clean_section

# The real report text bundled with the repository (data/iu_xray, unmodified, CC BY-NC-ND 4.0; see its
# README): tests, benchmarks and the tiny model's tokenizer read it; converters take any `--src`.
BUNDLED_DIR = Path(__file__).resolve().parent / "data" / "iu_xray"
BUNDLED_REPORTS_CSV = BUNDLED_DIR / "indiana_reports.csv"
SPLIT_RATIO: tuple[tuple[str, int], ...] = (("train", 7), ("validation", 1), ("test", 2))
IMAGE_DIRS: tuple[str, ...] = ("images/images_normalized", "images_normalized", "images")


def hashed_split(uid: str, seed: int = 0) -> str:
    """Deterministic 7:1:2 assignment from sha256(seed:uid); stable across machines and Python versions."""
    bucket = int(hashlib.sha256(f"{seed}:{uid}".encode()).hexdigest(), 16) % sum(w for _, w in SPLIT_RATIO)
    for name, weight in SPLIT_RATIO:
        if bucket < weight:
            return name
        bucket -= weight
    raise AssertionError("unreachable")


def _image_root(src: Path, candidates: tuple[str, ...]) -> Path:
    """The first candidate folder that exists (images may legitimately be absent: placeholders)."""
    for name in candidates:
        if (src / name).is_dir():
            return (src / name).resolve()
    return (src / candidates[0]).resolve()


def load(src: Path, split_seed: int = 0) -> LoadResult:
    if (src / "annotation.json").is_file():
        return _load_r2gen(src)
    reports = find_file(src, "indiana_reports.csv")
    projections = find_file(src, "indiana_projections.csv")
    if reports is None or projections is None:
        raise ConversionError(f"{src}: expected indiana_reports.csv + indiana_projections.csv (Kaggle) "
                              "or annotation.json (R2Gen)")
    return _load_kaggle(src, reports, projections, split_seed)


def _load_kaggle(src: Path, reports_csv: Path, projections_csv: Path, split_seed: int) -> LoadResult:
    result = LoadResult(notes=[f"layout: Kaggle CSV pair ({reports_csv.name}, {projections_csv.name}); "
                               f"split: sha256 hash of uid, seed {split_seed}, train:validation:test = 7:1:2"])
    image_root = _image_root(src, IMAGE_DIRS)
    images: dict[str, list[SourceImage]] = defaultdict(list)
    for row in read_csv(projections_csv, ("uid", "filename"), result.skipped, columns=("projection",)):
        images[row["uid"]].append(SourceImage(image_root / row["filename"], normalize_view(row.get("projection"))))
    for row in read_csv(reports_csv, ("uid",), result.skipped,
                        columns=("findings", "indication", "comparison", "image")):
        uid = row["uid"]
        result.studies.append(SourceStudy(
            study_id=uid,
            subject_id=uid,  # one study per anonymous patient
            split=hashed_split(uid, split_seed),
            images=images.get(uid, []),
            findings=clean_section(row.get("findings")),
            indication=clean_section(row.get("indication")),
            technique=clean_section(row.get("image")),
            comparison=clean_section(row.get("comparison")),
        ))
    return result


def _load_r2gen(src: Path) -> LoadResult:
    result = LoadResult(notes=["layout: R2Gen annotation.json (its train/val/test split)"])
    annotation = read_json(src / "annotation.json")
    if not isinstance(annotation, dict):
        raise ConversionError(f"{src / 'annotation.json'}: expected an object with train/val/test lists")
    image_root = _image_root(src, ("images",))
    for key, entries in annotation.items():
        split = normalize_split(key)
        if split is None or not isinstance(entries, list):
            raise ConversionError(f"{src / 'annotation.json'}: unknown split key {key!r}")
        for entry in entries:
            paths = entry.get("image_path") if isinstance(entry, dict) else None
            if not isinstance(paths, list) or not entry.get("id") or not isinstance(entry.get("report"), str):
                result.skipped["corrupt_row"] += 1
                continue
            result.studies.append(SourceStudy(
                study_id=str(entry["id"]),
                subject_id=str(entry["id"]),
                split=split,
                images=[SourceImage(image_root / str(path)) for path in paths],
                findings=clean_section(entry.get("report")),
            ))
    return result


def read_report_rows(path: Path = BUNDLED_REPORTS_CSV) -> list[dict[str, str]]:
    """Every row of a Kaggle `indiana_reports.csv`, in file order (the bundled copy by default)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_findings(path: Path = BUNDLED_REPORTS_CSV) -> list[str]:
    """The non-empty FINDINGS sections of `indiana_reports.csv`, in file order."""
    return [row["findings"] for row in read_report_rows(path) if row["findings"].strip()]
