"""Test oracle: what an edited completion must look like, given its source and the logged ops."""
from __future__ import annotations

from templates.report import join_report, split_sentences

REPLACING = ("fp_replace", "contradiction")
APPENDING = ("fn_add", "empty_guard")


def apply_ops(source: str, ops: list[dict]) -> str:
    """The source's sentences with each logged op applied (replace/delete in place, additions appended)."""
    slots: list[str | None] = list(split_sentences(source))
    appended: list[str] = []
    for op in ops:
        if op["op"] in APPENDING:
            assert op["old_sentence"] == "" and op["new_sentence"]
            appended.append(op["new_sentence"])
            continue
        assert op["old_sentence"] in slots, (op, slots)
        slot = slots.index(op["old_sentence"])
        if op["op"] in REPLACING:
            slots[slot] = op["new_sentence"]
        else:
            assert op["op"] == "fp_delete" and op["new_sentence"] == ""
            slots[slot] = None
    return join_report([s for s in slots if s is not None] + appended)


def expected_completion(source: str, ops: list[dict], tokenizer, max_completion_length: int) -> str:
    """The edited text as the policy sees it: cut to the completion budget in tokens when too long."""
    text = apply_ops(source, ops)
    body = tokenizer.encode(text, add_special_tokens=False)
    if len(body) <= max_completion_length:
        return text
    return tokenizer.decode(body[:max_completion_length], skip_special_tokens=True)
