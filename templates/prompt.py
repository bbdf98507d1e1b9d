"""The user prompt for one chest X-ray study (wording is ours; structure follows the paper, docs/algorithm.md §8).

Images come first (one `<image>` tag each), then a role line, a line naming every image in
order (current/prior study and view), the instruction, and INDICATION/TECHNIQUE/COMPARISON.

The teacher prompt (`build_teacher_prompt`, the rows' `teacher_prompt` column) is what ms-swift's
gold-guided peers (RLSD, SDAR, OPD-RL) show the policy as its privileged self: swift puts it in
place of the last user message and keeps the row's images (`OnPolicySample.build_teacher_view`),
so it is the student prompt verbatim, same `<image>` tags and context, followed by the gold
FINDINGS and an instruction to write the report.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

IMAGE_TAG = "<image>"
ROLE_LINE = "You are a radiology assistant reading a chest X-ray study."
INSTRUCTION = (
    "Describe the FINDINGS of the current study in the style of a radiology report."
)
PRIOR_INSTRUCTION = " Use the prior study for comparison where relevant."
UNKNOWN_VIEW = "UNKNOWN"  # view label when a data set does not record the projection
GOLD_HEADER = "REFERENCE FINDINGS (written by the radiologist who read this study):"
TEACHER_INSTRUCTION = (
    "Using the images and the reference findings above, write the FINDINGS of the current study "
    "in the style of a radiology report."
)


@dataclass(frozen=True)
class StudyImage:
    path: str
    view: str  # e.g. "PA", "AP", "LATERAL"; UNKNOWN_VIEW when the data set does not say
    prior: bool = False


def describe_images(images: Sequence[StudyImage]) -> str:
    """'Image 1: current study, PA view; Image 2: prior study, view not recorded.'"""
    parts = [
        f"Image {i}: {'prior' if image.prior else 'current'} study, "
        + ("view not recorded" if image.view == UNKNOWN_VIEW else f"{image.view} view")
        for i, image in enumerate(images, start=1)
    ]
    return "; ".join(parts) + "."


def build_prompt(
    images: Sequence[StudyImage],
    indication: str | None = None,
    technique: str | None = None,
    comparison: str | None = None,
) -> str:
    if not images:
        raise ValueError("a study prompt needs at least one image")
    instruction = INSTRUCTION + (PRIOR_INSTRUCTION if any(i.prior for i in images) else "")
    lines = [
        IMAGE_TAG * len(images) + ROLE_LINE,
        describe_images(images),
        instruction,
        f"INDICATION: {indication or 'None.'}",
        f"TECHNIQUE: {technique or 'None.'}",
        f"COMPARISON: {comparison or 'None.'}",
    ]
    return "\n".join(lines)


def build_messages(images: Sequence[StudyImage], findings: str | None, **context: str | None) -> list[dict]:
    """swift messages: the user prompt, plus the gold FINDINGS as assistant turn when given (SFT)."""
    messages = [{"role": "user", "content": build_prompt(images, **context)}]
    if findings is not None:
        messages.append({"role": "assistant", "content": findings})
    return messages


def build_teacher_prompt(images: Sequence[StudyImage], findings: str, **context: str | None) -> str:
    """The student prompt plus the gold FINDINGS as privileged context (swift's `teacher_prompt` column).

    swift swaps the whole user message and keeps the images, so the image tags must be the student's
    (a tag inside the report would shift every image after it: refused)."""
    if not findings or not findings.strip():
        raise ValueError("a teacher prompt needs the gold findings")
    if IMAGE_TAG in findings:
        raise ValueError(f"the gold findings contain the image tag {IMAGE_TAG!r}")
    return "\n".join([build_prompt(images, **context), GOLD_HEADER, findings.strip(), TEACHER_INSTRUCTION])
