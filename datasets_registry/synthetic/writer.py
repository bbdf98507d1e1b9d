"""Generated studies written as a swift data set: images, `train.jsonl`, `test.jsonl`, `labels.jsonl`.

Every study is a pure function of (seed, split, index), so a study does not depend on how many
others are generated and re-running gives byte-identical files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from datasets_registry.jsonl import write_jsonl
from datasets_registry.synthetic.findings import TECHNIQUE, SyntheticStudy, _indication, sample_findings, write_report
from datasets_registry.synthetic.images import IMAGE_SIZE, render_study
from templates.prompt import StudyImage, build_messages, build_teacher_prompt

_SPLIT_STREAM = {"train": 0, "test": 1}


def study_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """One independent stream per study: output does not depend on n_train/n_test."""
    return np.random.default_rng([seed, _SPLIT_STREAM[split], index])


def make_study(seed: int, split: str, index: int, size: int = IMAGE_SIZE) -> tuple[SyntheticStudy, dict[str, Image.Image]]:
    rng = study_rng(seed, split, index)
    findings = sample_findings(rng)
    report, sentence_findings = write_report(findings, rng)
    study = SyntheticStudy(
        study_id=f"syn-{split}-{index:05d}",
        subject_id=f"syn-p{seed}-{_SPLIT_STREAM[split]}{index:05d}",
        split=split,
        findings=findings,
        report=report,
        indication=_indication(findings, rng),
        sentences=sentence_findings,
    )
    return study, render_study(findings, rng, size)


def iter_studies(seed: int, split: str, n: int, size: int = IMAGE_SIZE) -> Iterator[tuple[SyntheticStudy, dict[str, Image.Image]]]:
    for index in range(n):
        yield make_study(seed, split, index, size)


def _sample_row(study: SyntheticStudy, image_paths: dict[str, Path]) -> dict:
    images = [StudyImage(str(path), view) for view, path in image_paths.items()]
    context = {"indication": study.indication, "technique": TECHNIQUE}
    return {
        "messages": build_messages(images, study.report, **context),
        "teacher_prompt": build_teacher_prompt(images, study.report, **context),
        "images": [image.path for image in images],
        "solution": study.report,
        "study_id": study.study_id,
        "subject_id": study.subject_id,
        "split": study.split,
        "views": list(image_paths),
        "prior_study_id": "",
        "indication": study.indication,
        "technique": TECHNIQUE,
        "comparison": "",
    }


@dataclass(frozen=True)
class GeneratedPaths:
    train: Path
    test: Path
    labels: Path  # study_id -> ground-truth findings (for telemetry and tests; not a swift column)


def generate(out_dir: str | Path, n_train: int, n_test: int, seed: int = 0, image_size: int = IMAGE_SIZE) -> GeneratedPaths:
    """Write images, `train.jsonl`, `test.jsonl` and `labels.jsonl` under `out_dir`.

    Files are written to temporary names and renamed at the end, so an interrupted run never
    leaves a jsonl that looks complete.
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train}, {n_test}")
    out = Path(out_dir).resolve()
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    paths = GeneratedPaths(out / "train.jsonl", out / "test.jsonl", out / "labels.jsonl")
    label_rows: list[dict] = []
    for split, n, target in (("train", n_train, paths.train), ("test", n_test, paths.test)):
        rows: list[dict] = []
        for study, images in iter_studies(seed, split, n, image_size):
            image_paths = {view: image_dir / f"{study.study_id}_{view.lower()}.png" for view in images}
            for view, image in images.items():
                image.save(image_paths[view], format="PNG")
            rows.append(_sample_row(study, image_paths))
            label_rows.append({"study_id": study.study_id, **asdict(study.findings)})
        write_jsonl(target, rows)
    write_jsonl(paths.labels, label_rows)
    return paths


def report_corpus(n: int, seed: int = 0) -> list[str]:
    """Report texts only (no images): cheap text for training the demo tokenizer."""
    texts = []
    for index in range(n):
        rng = study_rng(seed, "train", index)
        texts.append(write_report(sample_findings(rng), rng)[0])
    return texts
