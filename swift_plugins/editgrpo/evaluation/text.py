"""Text cleaning before scoring (`--clean reference`): the reference evaluation's rules."""
from __future__ import annotations

import re
from typing import Callable

from swift_plugins.editgrpo.evaluation.lexical import tokenize
from templates.report import END_MARKS, join_sentences, normalize, split_sentences

_INDICATION_RE = re.compile(r"\bindication:", re.IGNORECASE)
NEAR_DUPLICATE_JACCARD = 0.8
NEAR_DUPLICATE_CONTAINMENT = 0.9


def _near_duplicate(words: frozenset[str], kept: frozenset[str]) -> bool:
    shared = len(words & kept)
    return (
        shared / len(words | kept) > NEAR_DUPLICATE_JACCARD
        or shared / min(len(words), len(kept)) > NEAR_DUPLICATE_CONTAINMENT
    )


def clean_reference_style(text: str) -> str:
    """The reference evaluation's cleaning, applied to hypotheses and references alike.

    Whitespace collapsed, everything from "Indication:" on dropped, sentences of < 2 words
    dropped, and a sentence dropped when its word set nearly repeats an earlier kept one
    (Jaccard > 0.8, or > 90 % of the smaller set shared) — degenerate repetitive generations
    otherwise dominate lexical and entity metrics. Kept sentences end with punctuation.
    """
    text = normalize(text)
    cut = _INDICATION_RE.search(text)
    if cut:
        text = text[: cut.start()]
    kept: list[str] = []
    kept_words: list[frozenset[str]] = []
    for sentence in split_sentences(text):
        tokens = tokenize(sentence)
        if len(tokens) < 2:
            continue
        words = frozenset(tokens)
        if any(_near_duplicate(words, other) for other in kept_words):
            continue
        kept.append(sentence if sentence.endswith(END_MARKS) else sentence + ".")
        kept_words.append(words)
    return join_sentences(kept)


CLEANERS: dict[str, Callable[[str], str]] = {
    "none": lambda text: text,
    "reference": clean_reference_style,
}
