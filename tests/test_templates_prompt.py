"""The user prompt of one study: image tags first, role line, which image is which, instruction, context."""
from __future__ import annotations

import pytest

from templates.prompt import IMAGE_TAG, PRIOR_INSTRUCTION, ROLE_LINE, UNKNOWN_VIEW, StudyImage, build_messages, build_prompt


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
