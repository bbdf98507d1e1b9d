"""The offline `rules` backend: PROXIES of the clinical metrics that need no model weights.

For tests, the CPU demo and users without the weights. They are not CheXbert, RadGraph or
RaTEScore and their numbers are not comparable with published ones; `editgrpo score` marks
their rows `"backend": "rules"` and every scorer here has `proxy = True`.

* `RuleCheXpertLabeler`: CheXpert-14 by keywords with NegEx-style negation and uncertainty
  cues per clause; a report's label per condition is positive > uncertain > negative > blank
  over its mentions (as the CheXpert labeler aggregates); "No Finding" is positive when no
  pathology (Support Devices excepted) is positive or uncertain and the report says something
  about the chest (unlike CheXpert, which also calls junk "No Finding"). Same head classes as
  CheXbert (0 blank, 1 positive, 2 negative, 3 uncertain), so the same F1 code runs on top.
* `LexiconGraphScorer` (RadGraph proxy): P/R/F1 over the sets of (entity text, type) of the
  offline lexicon analyzer; 0 if either side has no entity, as RadGraph.
* `LexiconRaTEScorer` (RaTEScore proxy): the RaTEScore formula over lexicon entities, cosines
  floored at 0 so it stays in [0, 1].

Ranges: each proxy in [0, 1], their sum in [0, 3]. Text that says nothing about the chest
(punctuation, other languages, unrelated words) scores as the empty report does: no labels, no
entities (RaTEScore's 0.5 for an entity-less side), so the proxies cannot be gamed with junk.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rewards.entities.types import ReportAnalysis
from templates.report import split_sentences

from rewards.base import AnnotatingScorer, prf
from rewards.chexbert import CONDITIONS, LabelScorer
from rewards.ratescore import RaTEScorer, _load_analyzer

PROXY_NOTE = ("rules backend: offline PROXIES (keyword+negation CheXpert labels; lexicon-entity F1 for RadGraph; "
              "the RaTEScore formula over lexicon entities), not comparable with CheXbert/RadGraph/RaTEScore numbers")
BLANK, POSITIVE, NEGATIVE, UNCERTAIN = 0, 1, 2, 3
_PRIORITY = {POSITIVE: 3, UNCERTAIN: 2, NEGATIVE: 1, BLANK: 0}

# condition -> mention patterns (regex fragments matched on word boundaries, lower-case text)
MENTIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (r"widen\w* (?:of the )?mediastinum", r"mediastin\w* (?:is |are )?widen\w*", r"mediastinal widening",
                                   r"enlarged cardiomediastinal", r"cardiomediastinal silhouette (?:is |appears )?enlarged",
                                   r"mediastin\w* (?:is |appears )?enlarged", r"prominent mediastin\w*"),
    "Cardiomegaly": (r"cardiomegaly", r"(?:heart|cardiac silhouette|cardiac shadow|heart size) (?:is |appears |remains )?(?:mildly |moderately |markedly )?(?:enlarged|large)",
                     r"enlarge\w* (?:heart|cardiac silhouette)", r"cardiac enlargement", r"large heart"),
    "Lung Opacity": (r"opacit\w*", r"opacification", r"infiltrat\w*", r"densit\w*", r"airspace disease", r"air space disease",
                     r"haz\w*", r"interstitial markings?", r"reticular\w*", r"scarring"),
    "Lung Lesion": (r"nodul\w*", r"mass(?:es)?", r"lesions?", r"tumou?r", r"neoplasm", r"carcinoma", r"cavitary"),
    "Edema": (r"edema", r"oedema", r"vascular congestion", r"pulmonary congestion", r"congestive heart failure", r"chf"),
    "Consolidation": (r"consolidat\w*",),
    "Pneumonia": (r"pneumonia", r"infectio\w*", r"infectious process"),
    "Atelectasis": (r"atelecta\w*", r"collapse"),
    "Pneumothorax": (r"pneumothora\w*",),
    "Pleural Effusion": (r"effusions?", r"pleural fluid", r"blunting of the (?:\w+ )?costophrenic", r"costophrenic (?:angle )?blunting"),
    "Pleural Other": (r"pleural thickening", r"pleural plaques?", r"pleural scarring", r"fibrothorax"),
    "Fracture": (r"fractur\w*",),
    "Support Devices": (r"tubes?", r"catheters?", r"pacemaker", r"pacer", r"picc", r"central (?:venous )?line", r"sternotomy",
                        r"(?:surgical )?clips", r"stents?", r"devices?", r"hardware", r"defibrillator", r"port-?a-?cath",
                        r"(?:sternal )?wires", r"prosthe\w*"),
}
# "Normal" statements that are negative mentions of a condition (CheXpert labels them so).
NORMAL_MENTIONS: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": (r"(?:heart|cardiac) size (?:is |are )?(?:within normal limits|normal)", r"normal (?:heart|cardiac) size",
                     r"heart (?:is )?(?:normal|not enlarged)", r"(?:heart|cardiac silhouette) (?:is )?(?:of )?normal (?:in )?size",
                     r"(?:heart|cardiac silhouette) (?:is )?within normal limits"),
    "Enlarged Cardiomediastinum": (r"(?:cardio)?mediastinal (?:silhouette|contours?) (?:is |are )?(?:within normal limits|normal|unremarkable|stable)",
                                   r"normal (?:cardio)?mediastinal (?:silhouette|contours?)", r"mediastinum (?:is )?(?:normal|unremarkable)"),
}
NEGATION_PRE = (r"no", r"not", r"without", r"negative for", r"free of", r"absence of", r"resolution of", r"resolved", r"clear of",
                r"no evidence of", r"no signs? of", r"rule out", r"ruled out", r"never")
NEGATION_POST = (r"(?:is|are|was|were) not (?:seen|identified|present|evident|visualized|appreciated)", r"not (?:seen|identified|present)",
                 r"(?:has|have) resolved", r"resolved", r"absent", r"(?:is|are|was|were) no longer (?:seen|present|visualized)")
UNCERTAIN_PRE = (r"may", r"might", r"possible", r"possibly", r"probable", r"probably", r"likely", r"questionable", r"question of",
                 r"suspicious for", r"suspected", r"suggest\w*", r"concern for", r"could", r"borderline", r"versus", r"vs",
                 r"cannot (?:be )?(?:exclude|excluded|rule out|ruled out)", r"not (?:be )?excluded", r"differential", r"consider\w*")
UNCERTAIN_POST = (r"(?:is|are) (?:not )?excluded", r"cannot be (?:excluded|ruled out)", r"(?:is|are) possible", r"not ruled out")
# A report only earns "No Finding" when it says something about the chest: a condition mention above,
# a study-level normal statement, or a normality word about chest anatomy in one clause. Text with
# none of these (punctuation, other languages, unrelated words) is all blank, so it cannot match a
# normal reference's "No Finding" (the proxy would otherwise pay junk like a correct normal report).
STUDY_STATEMENTS = (r"(?:no|without|negative for) (?:\w+,? (?:or |and )?){0,5}?(?:abnormalit\w*|disease|findings?|process\w*|changes?)",
                    r"(?:normal|negative|unremarkable) (?:chest|study|exam\w*|radiograph\w*)",
                    r"(?:chest|study|exam\w*|radiograph\w*) (?:is |are )?(?:normal|negative|unremarkable)",
                    # chest findings outside the 14 conditions, which CheXpert leaves to "No Finding"
                    r"copd", r"emphysema", r"hyperinfla\w*", r"hyperexpan\w*", r"granulom\w*", r"tuberculosis", r"sarcoidosis",
                    r"(?:lymph)?adenopathy", r"scars?")
CHEST_ANATOMY = (r"lungs?", r"heart", r"cardiac", r"cardio\w*", r"mediastin\w*", r"pleura\w*", r"hil\w*", r"osseous", r"bon\w*",
                 r"skeletal", r"vascular\w*", r"vasculature", r"(?:hemi)?diaphragm\w*", r"costophrenic", r"aort\w*", r"trachea",
                 r"soft tissues?", r"thorax", r"chest", r"spine", r"ribs?", r"silhouettes?", r"contours?")
NORMALITY = (r"clear", r"normal\w*", r"unremarkable", r"intact", r"well[- ](?:expanded|aerated|inflated)", r"negative", r"stable")
CLAUSE_BREAK = re.compile(r";|:|\bbut\b|\bhowever\b|\balthough\b|\bexcept\b|\bwhich\b|\bwith the exception of\b")


def _alternation(patterns) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


_MENTION_RE = {c: _alternation(p) for c, p in MENTIONS.items()}
_NORMAL_RE = {c: _alternation(p) for c, p in NORMAL_MENTIONS.items()}
_NEG_PRE, _NEG_POST = _alternation(NEGATION_PRE), _alternation(NEGATION_POST)
_UNC_PRE, _UNC_POST = _alternation(UNCERTAIN_PRE), _alternation(UNCERTAIN_POST)
_STUDY, _ANATOMY, _NORMALITY = _alternation(STUDY_STATEMENTS), _alternation(CHEST_ANATOMY), _alternation(NORMALITY)


def _clauses(text: str) -> list[str]:
    return [c.strip() for sentence in split_sentences(text.lower()) for c in CLAUSE_BREAK.split(sentence) if c.strip()]


@dataclass(frozen=True)
class _Cues:
    """Where a clause's cues lie, found once per clause so each mention is classified in O(1)
    (searching the text before and after every mention was quadratic in the clause's length)."""

    first_negation_end: float  # a mention starting at or after it is negated by a cue before it
    last_negation_start: float  # a mention ending at or before it is negated by a cue after it
    first_uncertainty_end: float
    last_uncertainty_start: float

    @classmethod
    def of(cls, clause: str) -> "_Cues":
        def first_end(pattern: re.Pattern) -> float:
            return next((m.end() for m in pattern.finditer(clause)), math.inf)

        def last_start(pattern: re.Pattern) -> float:
            return max((m.start() for m in pattern.finditer(clause)), default=-math.inf)

        return cls(first_end(_NEG_PRE), last_start(_NEG_POST), first_end(_UNC_PRE), last_start(_UNC_POST))

    def mention_class(self, start: int, end: int) -> int:
        if self.first_negation_end <= start or self.last_negation_start >= end:
            return NEGATIVE
        if self.first_uncertainty_end <= start or self.last_uncertainty_start >= end:
            return UNCERTAIN
        return POSITIVE


def label_report(text: str) -> np.ndarray:
    """14 head classes (CheXbert order) for one report; a report without text is all blank."""
    classes = dict.fromkeys(CONDITIONS, BLANK)
    if not text.strip():
        return np.array([classes[c] for c in CONDITIONS], dtype=np.int64)

    def merge(condition: str, value: int) -> None:
        if _PRIORITY[value] > _PRIORITY[classes[condition]]:
            classes[condition] = value

    about_chest = False
    for clause in _clauses(text):
        about_chest = about_chest or bool(_STUDY.search(clause) or (_ANATOMY.search(clause) and _NORMALITY.search(clause)))
        cues = _Cues.of(clause)
        normal_spans = []
        for condition, pattern in _NORMAL_RE.items():
            for match in pattern.finditer(clause):
                merge(condition, NEGATIVE)
                normal_spans.append(match.span())
                about_chest = True
        for condition, pattern in _MENTION_RE.items():
            for match in pattern.finditer(clause):
                if any(s <= match.start() < e for s, e in normal_spans):
                    continue
                merge(condition, cues.mention_class(*match.span()))
                about_chest = True
    pathologies = [c for c in CONDITIONS if c not in ("No Finding", "Support Devices")]
    any_finding = any(classes[c] in (POSITIVE, UNCERTAIN) for c in pathologies)
    classes["No Finding"] = POSITIVE if about_chest and not any_finding else BLANK
    return np.array([classes[c] for c in CONDITIONS], dtype=np.int64)


class RuleCheXpertScorer(LabelScorer):
    """PROXY of CheXbert micro-F1-14: keyword + negation CheXpert labels, same F1 code."""

    proxy = True

    def label(self, texts: list[str]) -> np.ndarray:
        return np.stack([label_report(t) for t in texts]) if texts else np.zeros((0, len(CONDITIONS)), dtype=np.int64)


def entity_items(analysis: ReportAnalysis) -> set[tuple[str, str]]:
    return {(e.text.lower(), e.type) for e in analysis.entities}


class LexiconGraphScorer(AnnotatingScorer[ReportAnalysis]):
    """PROXY of RadGraph partial F1: F1 of lexicon entities (text, type incl. negation); 0 if a side has none."""

    name = "radgraph_partial_f1"
    headline = "f1"
    proxy = True

    def annotate(self, texts: list[str]) -> list[ReportAnalysis]:
        return _load_analyzer("lexicon", ()).analyze(texts)

    def compare(self, hyp: ReportAnalysis, ref: ReportAnalysis) -> dict[str, float]:
        h, r = entity_items(hyp), entity_items(ref)
        p, rec, f = prf(len(h & r), len(h), len(r)) if h and r else (0.0, 0.0, 0.0)
        return {"precision": p, "recall": rec, "f1": f}


class LexiconRaTEScorer(RaTEScorer):
    """PROXY of RaTEScore: its formula over lexicon entities, cosines floored at 0.

    The lexicon's signed-hash embeddings give unrelated concepts small negative cosines, which
    made the score negative (and the harmonic mean of mixed signs unbounded); RaTEScore is in [0, 1].
    """

    proxy = True
    min_cosine = 0.0

    def __init__(self, cache_size: int = 4096):
        super().__init__("lexicon", cache_size=cache_size)
