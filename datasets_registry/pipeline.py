"""Shared conversion steps: duplicates, longitudinal priors, view order and caps, image checks
(8-bit copies of 16-bit images), ms-swift rows, per-split jsonl files with a summary, and the
check that a conversion did not silently lose its data (no study written, or more than
`max_loss_fraction` of the records read skipped for one reason: an error with the counts;
`max_loss_fraction=1` turns the check off).

Every converter only reads its native layout into `SourceStudy` records; everything that decides
what a sample looks like happens here, once, so the four data sets behave the same way.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from templates.prompt import StudyImage, build_messages, build_teacher_prompt

from datasets_registry.io import has_bad_bytes, is_high_bit_depth, write_8bit_copy, write_placeholder_image
from datasets_registry.jsonl import jsonl_writer
from datasets_registry.records import SPLITS, ConversionError, LoadResult, SourceImage, SourceStudy, sorted_images

OverMax = Literal["truncate", "drop"]
OVER_MAX: tuple[str, ...] = get_args(OverMax)
MAX_LISTED_MISSING = 20
PLACEHOLDER_DIR = "placeholder_images"
EIGHT_BIT_DIR = "images_8bit"  # out/images_8bit/<path below src>: 8-bit PNG copies of 16-bit images
MAX_LOSS_FRACTION = 0.5  # one skip reason taking more than this share of the records read fails the conversion


@dataclass(frozen=True)
class ConvertOptions:
    max_images: int
    min_images: int = 1  # current-study views required (IU-XRay: 2, frontal + lateral, docs/algorithm.md §8)
    over_max: OverMax = "truncate"  # current-study views beyond max_images: keep the first ones, or drop the study
    priors: bool = True
    skip_missing: bool = False  # drop missing image files (counted) instead of failing
    placeholder_images: bool = False  # write small generated images for missing files (tests, demos)
    max_loss_fraction: float = MAX_LOSS_FRACTION  # see module docstring; 1.0 turns the check off
    show_progress: bool = True


@dataclass
class SplitSummary:
    studies: int = 0
    images: int = 0
    with_prior: int = 0
    truncated: int = 0  # studies whose views were cut to max_images
    skipped: Counter = field(default_factory=Counter)


@dataclass
class ConversionSummary:
    dataset: str
    splits: dict[str, SplitSummary]
    unassigned_skipped: Counter  # rows skipped before a split was known (corrupt rows, bad bytes)
    images_missing: int = 0
    placeholders_written: int = 0
    images_dropped_by_cap: int = 0
    images_8bit: int = 0  # 16-bit source images the rows use through their 8-bit copies
    images_8bit_bytes: int = 0  # disk those copies take
    split_source: str = ""  # where the train/validation/test assignment came from
    max_loss_fraction: float = MAX_LOSS_FRACTION
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total_studies(self) -> int:
        return sum(split.studies for split in self.splits.values())

    def skipped_total(self) -> Counter:
        total = Counter(self.unassigned_skipped)
        for split in self.splits.values():
            total.update(split.skipped)
        return total

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "split_source": self.split_source,
            "splits": {name: {"studies": s.studies, "images": s.images, "with_prior": s.with_prior,
                              "truncated": s.truncated, "skipped": dict(sorted(s.skipped.items()))}
                       for name, s in self.splits.items()},
            "unassigned_skipped": dict(sorted(self.unassigned_skipped.items())),
            "images_missing": self.images_missing,
            "placeholders_written": self.placeholders_written,
            "images_dropped_by_cap": self.images_dropped_by_cap,
            "images_8bit": {"count": self.images_8bit, "bytes": self.images_8bit_bytes, "dir": EIGHT_BIT_DIR},
            "max_loss_fraction": self.max_loss_fraction,
            "files": self.files,
            "notes": self.notes,
        }

    def table(self) -> str:
        lines = [f"{self.dataset}: {self.total_studies} studies written; split: {self.split_source}"]
        lines += self.notes
        lines.append(f"{'split':<11} {'studies':>8} {'images':>8} {'w/ prior':>9} {'truncated':>9}  skipped")
        for name, s in self.splits.items():
            skipped = ", ".join(f"{reason}={count}" for reason, count in sorted(s.skipped.items())) or "-"
            lines.append(f"{name:<11} {s.studies:>8} {s.images:>8} {s.with_prior:>9} {s.truncated:>9}  {skipped}")
        if self.unassigned_skipped:
            lines.append("skipped before split: " + ", ".join(
                f"{reason}={count}" for reason, count in sorted(self.unassigned_skipped.items())))
        lines.append(f"missing images: {self.images_missing} (placeholders written: {self.placeholders_written}); "
                     f"images beyond max_images: {self.images_dropped_by_cap}")
        if self.images_8bit:
            lines.append(f"16-bit images: {self.images_8bit} used as 8-bit copies under {EIGHT_BIT_DIR}/ "
                         f"({self.images_8bit_bytes / 2**20:.1f} MiB)")
        return "\n".join(lines)


def drop_duplicates(studies: list[SourceStudy]) -> tuple[list[SourceStudy], list[SourceStudy]]:
    """A study id seen twice is ambiguous (which report, which images?): every copy is dropped."""
    counts = Counter(study.study_id for study in studies)
    kept = [study for study in studies if counts[study.study_id] == 1]
    dropped = [study for study in studies if counts[study.study_id] > 1]
    return kept, dropped


def link_priors(studies: list[SourceStudy]) -> dict[str, SourceStudy]:
    """study_id -> the most recent strictly earlier study (with images) of the same patient.

    A data set's explicit prior link wins; otherwise studies with an `order` key are compared.
    Studies without findings still serve as priors: only their images are used, never the report.
    """
    by_subject: dict[str, list[SourceStudy]] = defaultdict(list)
    for study in studies:
        if study.order is not None and study.images:
            by_subject[study.subject_id].append(study)
    priors: dict[str, SourceStudy] = {}
    for patient_studies in by_subject.values():
        patient_studies.sort(key=lambda s: (s.order, s.study_id))
        latest_earlier: SourceStudy | None = None
        for i, study in enumerate(patient_studies):
            if i and patient_studies[i - 1].order < study.order:
                latest_earlier = patient_studies[i - 1]
            if latest_earlier is not None:
                priors[study.study_id] = latest_earlier
    for study in studies:
        if study.explicit_prior is not None and study.explicit_prior.images:
            priors[study.study_id] = study.explicit_prior
    return priors


class _ImageResolver:
    """Checks that image files exist; writes placeholders or drops them according to the options;
    points 16-bit images to 8-bit copies (made once, reused while newer than their source)."""

    def __init__(self, src: Path, out: Path, options: ConvertOptions):
        self.src, self.out, self.options = src, out, options
        self.missing: dict[Path, None] = {}  # ordered set: each file listed once
        self.placeholders = 0
        self.used: dict[Path, Path] = {}  # existing source file -> the file rows use (itself or its 8-bit copy)

    def _below(self, folder: str, path: Path) -> Path:
        try:
            relative = path.relative_to(self.src)
        except ValueError:
            relative = Path(path.name)
        return (self.out / folder / relative).resolve()

    def resolve(self, image: SourceImage) -> SourceImage | None:
        if image.path.is_file():
            return SourceImage(self._eight_bit(image.path), image.view)
        if self.options.placeholder_images:
            target = self._below(PLACEHOLDER_DIR, image.path)
            if not target.is_file():
                write_placeholder_image(target)
                self.placeholders += 1
            return SourceImage(target, image.view)
        self.missing[image.path] = None
        return None

    @property
    def copies(self) -> list[Path]:
        return [used for source, used in self.used.items() if used != source]

    def _eight_bit(self, path: Path) -> Path:
        if path not in self.used:
            self.used[path] = self._copy(path) if is_high_bit_depth(path) else path
        return self.used[path]

    def _copy(self, path: Path) -> Path:
        target = self._below(EIGHT_BIT_DIR, path).with_suffix(".png")
        if not target.is_file() or target.stat().st_mtime < path.stat().st_mtime:
            write_8bit_copy(path, target)
        return target


def _row(study: SourceStudy, current: list[SourceImage], prior: SourceStudy | None,
         prior_images: list[SourceImage]) -> dict:
    """One jsonl row. Absent text is "" rather than null: HF's json loader fixes a column's type
    from the first block of a file, so a column that starts null and holds text later cannot load.
    `teacher_prompt` is the privileged prompt of swift's gold-guided peers (templates.prompt)."""
    images = [StudyImage(str(i.path), i.view) for i in current]
    images += [StudyImage(str(i.path), i.view, prior=True) for i in prior_images]
    context = {"indication": study.indication, "technique": study.technique, "comparison": study.comparison}
    return {
        "messages": build_messages(images, study.findings, **context),
        "teacher_prompt": build_teacher_prompt(images, study.findings, **context),
        "images": [image.path for image in images],
        "solution": study.findings,
        "study_id": study.study_id,
        "subject_id": study.subject_id,
        "split": study.split,
        "views": [image.view for image in images],
        "prior_study_id": prior.study_id if prior_images else "",
        **{key: value or "" for key, value in context.items()},
    }


def convert_studies(dataset: str, loaded: LoadResult, src: Path, out: Path, options: ConvertOptions) -> ConversionSummary:
    """Write out/{train,validation,test}.jsonl from loaded studies; returns the summary.

    Without --skip-missing/--placeholder-images a missing image file is an error that lists the
    files; nothing is left half-written (datasets_registry.jsonl writes each split atomically).
    """
    from tqdm import tqdm

    if not 1 <= options.min_images <= options.max_images:
        raise ConversionError(f"need 1 <= min_images <= max_images, got {options.min_images} and {options.max_images}")
    if not 0 <= options.max_loss_fraction <= 1:  # also refuses nan
        raise ConversionError(f"max_loss_fraction must be within [0, 1], got {options.max_loss_fraction}")
    out.mkdir(parents=True, exist_ok=True)
    summary = ConversionSummary(dataset, {name: SplitSummary() for name in SPLITS}, Counter(loaded.skipped),
                                split_source=loaded.split_source, max_loss_fraction=options.max_loss_fraction,
                                notes=list(loaded.notes))
    studies, duplicates = drop_duplicates(loaded.studies)
    for study in duplicates:
        summary.splits[study.split].skipped["duplicate_study_id"] += 1
    priors = link_priors(studies) if options.priors else {}
    resolver = _ImageResolver(src.resolve(), out, options)
    final = {name: out / f"{name}.jsonl" for name in SPLITS}
    with ExitStack() as stack:  # an exception (incl. the missing-images error) discards every split
        writers = {name: stack.enter_context(jsonl_writer(path)) for name, path in final.items()}
        for study in tqdm(sorted(studies, key=lambda s: (SPLITS.index(s.split), s.study_id)),
                          desc=f"convert {dataset}", unit="study", disable=not options.show_progress):
            split = summary.splits[study.split]
            reason = _convert_one(study, priors.get(study.study_id), options, resolver, split, summary, writers)
            if reason:
                split.skipped[reason] += 1
        summary.placeholders_written = resolver.placeholders
        if resolver.missing and not options.skip_missing:
            listed = "\n  ".join(str(path) for path in list(resolver.missing)[:MAX_LISTED_MISSING])
            more = len(resolver.missing) - MAX_LISTED_MISSING
            raise ConversionError(
                f"{len(resolver.missing)} image file(s) missing under {src}:\n  {listed}"
                + (f"\n  ... and {more} more" if more > 0 else "")
                + "\nPass --skip-missing to drop them (counted), or --placeholder-images to generate stand-ins.")
        _check_losses(summary)
    summary.images_missing = len(resolver.missing)
    summary.images_8bit = len(resolver.copies)
    summary.images_8bit_bytes = sum(path.stat().st_size for path in resolver.copies)
    summary.files.update({name: str(path) for name, path in final.items()})
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    return summary


def _check_losses(summary: ConversionSummary) -> None:
    """A wrong folder or file (say a wrong MIMIC `--reports`) reads as a wholesale skip: fail with the counts."""
    if summary.max_loss_fraction >= 1:
        return
    skipped = summary.skipped_total()
    records = summary.total_studies + sum(skipped.values())
    counts = ", ".join(f"{reason}={count}" for reason, count in skipped.most_common()) or "none"
    if summary.total_studies == 0:
        raise ConversionError(f"{summary.dataset}: no study written from {records} record(s) read (skipped: {counts}); "
                              "check --src and the data set's files.")
    reason, count = skipped.most_common(1)[0] if skipped else ("", 0)
    if count > summary.max_loss_fraction * records:
        raise ConversionError(
            f"{summary.dataset}: {count} of {records} records read ({count / records:.0%}) skipped as {reason}, "
            f"more than the {summary.max_loss_fraction:.0%} allowed (skipped: {counts}; {summary.total_studies} written). "
            "Check the inputs, or pass --max-loss-fraction to accept it.")


def _convert_one(study: SourceStudy, prior: SourceStudy | None, options: ConvertOptions, resolver: _ImageResolver,
                 split: SplitSummary, summary: ConversionSummary, writers: dict) -> str | None:
    """Writes the study's row, or returns the reason it is skipped."""
    if not study.findings:
        return "no_findings"
    if has_bad_bytes(study.findings, study.indication, study.technique, study.comparison):
        return "non_utf8_text"  # a safety net: loaders already count undecodable rows
    if not study.images:
        return "no_images"
    current = sorted_images(study.images)
    if len(current) < options.min_images:
        return "too_few_images"
    if len(current) > options.max_images:
        if options.over_max == "drop":
            return "too_many_images"
        summary.images_dropped_by_cap += len(current) - options.max_images
        split.truncated += 1
        current = current[:options.max_images]
    prior_candidates = sorted_images(prior.images)[:options.max_images - len(current)] if prior is not None else []
    current = [image for image in map(resolver.resolve, current) if image is not None]
    prior_images = [image for image in map(resolver.resolve, prior_candidates) if image is not None]
    if len(current) < options.min_images:
        return "missing_images"
    row = _row(study, current, prior, prior_images)
    writers[study.split].write(row)
    split.studies += 1
    split.images += len(row["images"])
    split.with_prior += bool(prior_images)
    return None
