"""The user prompt of one study: image tags first, role line, which image is which, instruction, context;
and the teacher prompt of the gold-guided peers: that prompt verbatim plus the gold FINDINGS."""
from __future__ import annotations

import pytest

from templates.prompt import (GOLD_HEADER, IMAGE_TAG, PRIOR_INSTRUCTION, ROLE_LINE, TEACHER_INSTRUCTION, UNKNOWN_VIEW,
                              StudyImage, build_messages, build_prompt, build_teacher_prompt)


def test_prompt_structure_with_prior_and_context(iu_reports):
    row = next(r for r in iu_reports if r["indication"].strip() and r["comparison"].strip() and r["findings"].strip())
    images = [StudyImage("/a.png", "PA"), StudyImage("/b.png", "LATERAL"), StudyImage("/c.png", "AP", prior=True)]
    prompt = build_prompt(images, indication=row["indication"], technique=row["image"], comparison=row["comparison"])
    lines = prompt.split("\n")
    assert lines[0] == IMAGE_TAG * 3 + ROLE_LINE and prompt.count(IMAGE_TAG) == 3
    assert lines[1] == "Image 1: current study, PA view; Image 2: current study, LATERAL view; Image 3: prior study, AP view."
    assert lines[2].endswith(PRIOR_INSTRUCTION)
    assert lines[3:] == [f"INDICATION: {row['indication']}", f"TECHNIQUE: {row['image']}", f"COMPARISON: {row['comparison']}"]


def test_no_prior_clause_without_prior_and_absent_context_and_views(iu_findings):
    prompt = build_prompt([StudyImage("/a.png", UNKNOWN_VIEW)], indication="", technique=None)
    assert PRIOR_INSTRUCTION.strip() not in prompt
    assert "Image 1: current study, view not recorded." in prompt
    assert prompt.endswith("INDICATION: None.\nTECHNIQUE: None.\nCOMPARISON: None.")
    messages = build_messages([StudyImage("/a.png", "PA")], iu_findings[0])
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == iu_findings[0]
    assert [m["role"] for m in build_messages([StudyImage("/a.png", "PA")], None)] == ["user"]
    with pytest.raises(ValueError):
        build_prompt([])


def test_teacher_prompt_is_the_student_prompt_plus_the_gold_findings(iu_reports):
    row = next(r for r in iu_reports if r["indication"].strip() and r["comparison"].strip() and r["findings"].strip())
    images = [StudyImage("/a.png", "PA"), StudyImage("/b.png", "LATERAL"), StudyImage("/c.png", "AP", prior=True)]
    context = {"indication": row["indication"], "technique": row["image"], "comparison": row["comparison"]}
    student = build_prompt(images, **context)
    teacher = build_teacher_prompt(images, row["findings"], **context)
    # swift swaps the whole user message and keeps the images: same tags, same context, first
    assert teacher.startswith(student + "\n")
    assert teacher.count(IMAGE_TAG) == student.count(IMAGE_TAG) == 3 and teacher.startswith(IMAGE_TAG * 3)
    assert teacher[len(student) + 1:].split("\n") == [GOLD_HEADER, row["findings"].strip(), TEACHER_INSTRUCTION]
    assert row["findings"] not in student


@pytest.mark.parametrize("findings", ["", "  ", f"Heart normal. {IMAGE_TAG} Lungs clear."])
def test_teacher_prompt_refuses_findings_it_cannot_carry(findings):
    with pytest.raises(ValueError):
        build_teacher_prompt([StudyImage("/a.png", "PA")], findings)
