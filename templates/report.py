"""Report text normalisation and sentence splitting.

One definition shared by the edit engine, the rewards and the evaluation, so that "a sentence"
means the same thing everywhere (the reference splits differently in each place).
"""
from __future__ import annotations

import re

EOS_STRINGS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>", "</s>", "<eos>", "<|eot_id|>")

_EOS_RE = re.compile("|".join(re.escape(s) for s in EOS_STRINGS))
_WS_RE = re.compile(r"\s+")
# A sentence ends where . ! or ? is followed by whitespace, or at a line break.
_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def strip_eos(text: str) -> str:
    return _EOS_RE.sub(" ", text)


def normalize(text: str) -> str:
    """EOS-like strings removed, all whitespace collapsed to single spaces, stripped."""
    return _WS_RE.sub(" ", strip_eos(text or "")).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of a report, each normalised; a non-empty text without terminator is one sentence."""
    pieces = _SPLIT_RE.split(strip_eos(text or ""))
    return [s for s in (normalize(p) for p in pieces) if s]


def sentence_key(text: str) -> str:
    """The text's sentences, one per line: texts with the same key have the same normalised text and
    the same sentences (a cache key that, unlike `normalize`, keeps line-break sentence boundaries)."""
    return "\n".join(split_sentences(text))


def join_sentences(sentences: list[str] | tuple[str, ...]) -> str:
    """Edited reports are re-joined with single spaces."""
    return " ".join(s for s in sentences if s)
