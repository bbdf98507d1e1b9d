"""Plain records every converter produces from its native layout (before priors, caps, checks)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from templates.prompt import UNKNOWN_VIEW

SPLITS: tuple[str, ...] = ("train", "validation", "test")
_SPLIT_ALIASES = {"train": "train", "validate": "validation", "validation": "validation", "val": "validation",
                  "valid": "validation", "dev": "validation", "test": "test"}

# SUPINE and ERECT (ReXGradient's ImageViewPosition) name the patient's position of a frontal film.
FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP", "FRONTAL", "SUPINE", "ERECT")
LATERAL_VIEWS: tuple[str, ...] = ("LATERAL", "LL", "RL")
_VIEW_ALIASES = {
    "POSTERO_ANTERIOR": "PA", "POSTEROANTERIOR": "PA", "ANTERO_POSTERIOR": "AP", "ANTEROPOSTERIOR": "AP",
    "LAT": "LATERAL", "LEFT LATERAL": "LL", "RIGHT LATERAL": "RL", "": UNKNOWN_VIEW,
}
_NO_VIEW: tuple[str, ...] = ("NAN", "NONE", "NULL", "N/A")  # missing-value spellings, not view names


class ConversionError(Exception):
    """Input that cannot be converted without producing wrong samples (message says what and where)."""


def normalize_split(value: str) -> str | None:
    return _SPLIT_ALIASES.get((value or "").strip().lower())


def normalize_view(value: str | None) -> str:
    """Upper-case DICOM-style view label (PA, AP, LATERAL, LL, AP AXIAL, ...); UNKNOWN when absent."""
    text = " ".join((value or "").replace("-", " ").split()).upper()
    return _VIEW_ALIASES.get(text, text) if text not in _NO_VIEW else UNKNOWN_VIEW


def view_rank(view: str) -> int:
    """Frontal first (PA, AP, FRONTAL, SUPINE, ERECT, then other PA/AP-like), then lateral, then
    anything else, UNKNOWN last."""
    if view in FRONTAL_VIEWS:
        return FRONTAL_VIEWS.index(view)
    if view.startswith(("PA", "AP")):
        return len(FRONTAL_VIEWS)
    if view in LATERAL_VIEWS:
        return 10 + LATERAL_VIEWS.index(view)
    if "LATERAL" in view:  # e.g. XTABLE LATERAL
        return 10 + len(LATERAL_VIEWS)
    return 30 if view == UNKNOWN_VIEW else 20


@dataclass(frozen=True)
class SourceImage:
    path: Path  # absolute path where the data set says the image is
    view: str = UNKNOWN_VIEW


@dataclass
class SourceStudy:
    """One study as its data set describes it. `findings` None = no FINDINGS section (skipped,
    but the study can still be another study's prior). `order` sorts a patient's studies in time."""

    study_id: str
    subject_id: str
    split: str
    images: list[SourceImage]
    findings: str | None
    indication: str | None = None
    technique: str | None = None
    comparison: str | None = None
    order: tuple | None = None
    explicit_prior: "SourceStudy | None" = None  # a prior named by the data set itself (PadChest-GR)


@dataclass
class LoadResult:
    studies: list[SourceStudy] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count, for rows that never became studies
    split_source: str = "the data set's own split"  # says where train/validation/test came from (summary.json)
    notes: list[str] = field(default_factory=list)  # layout facts worth printing (which files were read)


def sorted_images(images: list[SourceImage]) -> list[SourceImage]:
    """Stable view order: the first frontal, the first lateral, the first other view, then the next
    of each in the same way (ties by file name), so that a cap of 2 keeps a frontal + lateral pair."""
    ranked = sorted(images, key=lambda image: (view_rank(image.view), image.path.name, str(image.path)))
    seen: Counter = Counter()
    keyed = []
    for position, image in enumerate(ranked):
        family = view_rank(image.view) // 10  # 0 frontal, 1 lateral, 2 other, 3 unknown
        keyed.append((seen[family], family, position, image))
        seen[family] += 1
    return [image for *_, image in sorted(keyed, key=lambda item: item[:3])]
