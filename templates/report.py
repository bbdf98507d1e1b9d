"""Report text normalisation and sentence splitting.

One definition shared by the edit engine, the rewards and the evaluation, so that "a sentence"
means the same thing everywhere (the reference splits differently in each place).
"""
from __future__ import annotations

import re

EOS_STRINGS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>", "</s>", "<eos>", "<|eot_id|>")

_EOS_RE = re.compile("|".join(re.escape(s) for s in EOS_STRINGS))
# C0/C1 control characters other than tab and line feed, and a whole ANSI escape sequence (ESC [
# ... final byte): each becomes a space before analysis, so "effusion.\x00 Heart" and
# "effusion.\x1b[31mHeart" end the sentence like "effusion. Heart" (else the two stay one sentence).
_CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# lone surrogates (from JSON "\ud800" escapes) cannot be encoded, and tokenizers raise on them
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_WS_RE = re.compile(r"\s+")
END_MARKS: tuple[str, ...] = (".", "!", "?")
# A sentence ends where . ! or ? is followed by whitespace, or at a line break.
_SPLIT_RE = re.compile(rf"(?<=[{re.escape(''.join(END_MARKS))}])\s+|\n+")


def _clean(text: str | None) -> str:
    """EOS-like strings and control characters replaced by spaces, lone surrogates by U+FFFD: the one
    pass before analysis."""
    return _SURROGATE_RE.sub("\ufffd", _CONTROL_RE.sub(" ", _EOS_RE.sub(" ", text or "")))


def _collapse(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


def normalize(text: str | None) -> str:
    """EOS-like strings and control characters removed, all whitespace collapsed to single spaces, stripped."""
    return _collapse(_clean(text))


def split_sentences(text: str | None) -> list[str]:
    """Sentences of a report, each normalised; a non-empty text without terminator is one sentence."""
    return [s for s in map(_collapse, _SPLIT_RE.split(_clean(text))) if s]


def sentence_key(text: str) -> str:
    """The text's sentences, one per line: texts with the same key have the same normalised text and
    the same sentences (a cache key that, unlike `normalize`, keeps line-break sentence boundaries)."""
    return "\n".join(split_sentences(text))


def join_sentences(sentences: list[str] | tuple[str, ...]) -> str:
    """Sentences joined with single spaces: `normalize(t) == join_sentences(split_sentences(t))`."""
    return " ".join(s for s in sentences if s)


def join_report(sentences: list[str] | tuple[str, ...]) -> str:
    """Sentences re-joined into a new report (the edit engine's output): single spaces, and a "."
    after every sentence but the last that has no end mark (it ended at a line break), so
    "No pneumothorax" + "Heart is enlarged." is not the run-on "No pneumothorax Heart is
    enlarged." and the text splits into the same sentences again."""
    kept = [s for s in sentences if s]
    return " ".join(s if s.endswith(END_MARKS) or n == len(kept) - 1 else s + "." for n, s in enumerate(kept))
