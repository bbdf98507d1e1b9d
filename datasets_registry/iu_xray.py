"""IU-XRay (Open-I, Indiana University) in either of its two common distributions.

* Kaggle "Chest X-rays (Indiana University)": `indiana_reports.csv` (uid, MeSH, Problems, image,
  indication, comparison, findings, impression), `indiana_projections.csv` (uid, filename,
  projection = Frontal/Lateral) and `images/images_normalized/<filename>`. The CSV columns are
  the report sections already; `image` (e.g. "Xray Chest PA and Lateral") is the technique.
  Kaggle has no split: without annotation.json a study goes to train/validation/test by a
  seeded hash of its uid in the proportions 7:1:2 (R2Gen's ratio). Studies need two views (docs/algorithm.md §8; one-view studies
  are skipped and counted): the 2,955 two-view studies with findings are R2Gen's 2,955, split
  here 2,049/320/586 against R2Gen's 2,069/296/590 (the paper's 2,365 train+validation / 590 test).
  Projections of a uid without a report row (a truncated reports file) are counted: `no_report_row`.
* R2Gen `annotation.json`: {"train"|"val"|"test": [{"id": "CXR2384_IM-0942", "report": FINDINGS,
  "image_path": ["CXR2384_IM-0942/0.png", ...], "split": ...}]} with images under `images/`.
  Whenever it is there its split and reports are used: the paper's split. With the Kaggle CSVs
  beside it, each study's INDICATION/COMPARISON/technique come from its indiana_reports.csv row,
  joined by uid through the image file names (`2384_IM-0942-1001.dcm.png` is R2Gen's
  `CXR2384_IM-0942`). Views are not recorded in annotation.json (UNKNOWN).
summary.json's `split_source` says which split a conversion used.

IU-XRay has no patient identifiers or dates, so there are no priors.
"""
from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
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
_R2GEN_NAME_RE = re.compile(r"(?P<case>\d+_IM-\d+)-")  # Kaggle image file name -> R2Gen id without "CXR"


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
    reports = find_file(src, "indiana_reports.csv")
    projections = find_file(src, "indiana_projections.csv")
    if (src / "annotation.json").is_file():
        return _load_r2gen(src, reports, projections)
    if reports is None or projections is None:
        raise ConversionError(f"{src}: expected indiana_reports.csv + indiana_projections.csv (Kaggle) "
                              "or annotation.json (R2Gen)")
    return _load_kaggle(src, reports, projections, split_seed)


@dataclass
class _KaggleTables:
    reports: list[dict[str, str]]  # indiana_reports.csv rows, in file order
    images: dict[str, list[SourceImage]]  # uid -> its views
    r2gen_uid: dict[str, str]  # R2Gen id -> uid, from the file names ("2384_IM-0942-1001.dcm.png": "CXR2384_IM-0942")


def _read_kaggle(src: Path, reports_csv: Path, projections_csv: Path, skipped: Counter) -> _KaggleTables:
    image_root = _image_root(src, IMAGE_DIRS)
    images: dict[str, list[SourceImage]] = defaultdict(list)
    r2gen_uid: dict[str, str] = {}
    for row in read_csv(projections_csv, ("uid", "filename"), skipped, columns=("projection",)):
        images[row["uid"]].append(SourceImage(image_root / row["filename"], normalize_view(row.get("projection"))))
        if match := _R2GEN_NAME_RE.match(row["filename"]):
            r2gen_uid.setdefault(f"CXR{match['case']}", row["uid"])
    reports = list(read_csv(reports_csv, ("uid",), skipped, columns=("findings", "indication", "comparison", "image")))
    return _KaggleTables(reports, images, r2gen_uid)


def _context(row: dict[str, str] | None) -> dict[str, str | None]:
    """The prompt context of a report row: INDICATION, COMPARISON, and the technique (`image`)."""
    row = row or {}
    return {"indication": clean_section(row.get("indication")), "technique": clean_section(row.get("image")),
            "comparison": clean_section(row.get("comparison"))}


def _load_kaggle(src: Path, reports_csv: Path, projections_csv: Path, split_seed: int) -> LoadResult:
    result = LoadResult(split_source=f"sha256 hash of uid, seed {split_seed}, train:validation:test = 7:1:2",
                        notes=[f"layout: Kaggle CSV pair ({reports_csv.name}, {projections_csv.name})"])
    tables = _read_kaggle(src, reports_csv, projections_csv, result.skipped)
    # Projections of a uid without a report row (e.g. a truncated reports file): a study lost, counted.
    if lost := len(tables.images.keys() - {row["uid"] for row in tables.reports}):
        result.skipped["no_report_row"] = lost
    for row in tables.reports:
        uid = row["uid"]
        result.studies.append(SourceStudy(
            study_id=uid,
            subject_id=uid,  # one study per anonymous patient
            split=hashed_split(uid, split_seed),
            images=tables.images.get(uid, []),
            findings=clean_section(row.get("findings")),
            **_context(row),
        ))
    return result


def _r2gen_context(src: Path, reports_csv: Path, projections_csv: Path, skipped: Counter) -> dict[str, dict[str, str]]:
    """R2Gen id -> its indiana_reports.csv row (a uid with two report rows is ambiguous: no context)."""
    tables = _read_kaggle(src, reports_csv, projections_csv, skipped)
    uid_counts = Counter(row["uid"] for row in tables.reports)
    rows = {row["uid"]: row for row in tables.reports if uid_counts[row["uid"]] == 1}
    return {case: rows[uid] for case, uid in tables.r2gen_uid.items() if uid in rows}


def _load_r2gen(src: Path, reports_csv: Path | None, projections_csv: Path | None) -> LoadResult:
    """R2Gen's split and reports; with the Kaggle CSVs beside it, their context joined by uid."""
    result = LoadResult(split_source="R2Gen annotation.json (train/val/test)",
                        notes=["layout: R2Gen annotation.json"])
    annotation = read_json(src / "annotation.json")
    if not isinstance(annotation, dict):
        raise ConversionError(f"{src / 'annotation.json'}: expected an object with train/val/test lists")
    have_csvs = reports_csv is not None and projections_csv is not None
    csv_skipped: Counter = Counter()  # CSV rows, not studies: a bad row only costs a study its context
    context = _r2gen_context(src, reports_csv, projections_csv, csv_skipped) if have_csvs else {}
    image_root = _image_root(src, ("images",))
    joined = 0
    for key, entries in annotation.items():
        split = normalize_split(key)
        if split is None or not isinstance(entries, list):
            raise ConversionError(f"{src / 'annotation.json'}: unknown split key {key!r}")
        for entry in entries:
            paths = entry.get("image_path") if isinstance(entry, dict) else None
            if not isinstance(paths, list) or not entry.get("id") or not isinstance(entry.get("report"), str):
                result.skipped["corrupt_row"] += 1
                continue
            row = context.get(str(entry["id"]))
            joined += row is not None
            result.studies.append(SourceStudy(
                study_id=str(entry["id"]),
                subject_id=str(entry["id"]),
                split=split,
                images=[SourceImage(image_root / str(path)) for path in paths],
                findings=clean_section(entry.get("report")),
                **_context(row),
            ))
    if have_csvs:
        problems = "".join(f", {reason}={count}" for reason, count in sorted(csv_skipped.items()))
        result.notes.append(f"context (indication, technique, comparison): {reports_csv.name} joined by uid, "
                            f"{joined} of {len(result.studies)} studies{problems}")
    else:
        result.notes.append("no indiana_reports.csv + indiana_projections.csv beside it: no indication/comparison")
    return result


def read_report_rows(path: Path = BUNDLED_REPORTS_CSV) -> list[dict[str, str]]:
    """Every row of a Kaggle `indiana_reports.csv`, in file order (the bundled copy by default)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_findings(path: Path = BUNDLED_REPORTS_CSV) -> list[str]:
    """The non-empty FINDINGS sections of `indiana_reports.csv`, in file order."""
    return [row["findings"] for row in read_report_rows(path) if row["findings"].strip()]
