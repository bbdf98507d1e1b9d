"""Lexical extras of the evaluation table: corpus BLEU-4 and ROUGE-L.

Written here (a few lines each) instead of pulling pycocoevalcap/nltk: the formulas are the COCO
caption toolkit's, which the reference evaluation uses — BLEU-4 at corpus level (clipped n-gram
counts and the brevity penalty summed over all pairs, no smoothing), ROUGE-L as the mean per-pair
LCS F-measure with beta = 1.2. Tokens differ slightly: text is lower-cased and punctuation removed
("3.5" -> "35", "lung's" -> "lungs"), where COCO's PTB tokenizer splits ("lung 's").
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

_PUNCT_RE = re.compile(r"[^\w\s]")
ROUGE_L_BETA = 1.2


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens with punctuation removed ("lung's" -> "lungs", "x-ray" -> "xray")."""
    return _PUNCT_RE.sub("", (text or "").lower()).split()


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-n with one reference per hypothesis; 0.0 when any n-gram precision is 0."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses vs {len(refs)} references")
    matched = [0] * max_n
    total = [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hyps, refs):
        hyp_tokens, ref_tokens = tokenize(hyp), tokenize(ref)
        hyp_len += len(hyp_tokens)
        ref_len += len(ref_tokens)
        for n in range(1, max_n + 1):
            hyp_counts, ref_counts = _ngrams(hyp_tokens, n), _ngrams(ref_tokens, n)
            matched[n - 1] += sum(min(count, ref_counts[gram]) for gram, count in hyp_counts.items())
            total[n - 1] += max(len(hyp_tokens) - n + 1, 0)
    if hyp_len == 0 or min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total)) / max_n
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1.0 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hyp: str, ref: str, beta: float = ROUGE_L_BETA) -> float:
    """ROUGE-L F-measure of one pair; 0.0 when either side has no tokens."""
    hyp_tokens, ref_tokens = tokenize(hyp), tokenize(ref)
    lcs = _lcs_length(hyp_tokens, ref_tokens) if hyp_tokens and ref_tokens else 0
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp_tokens), lcs / len(ref_tokens)
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)
