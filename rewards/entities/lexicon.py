"""Offline entity analyzer: curated radiology lexicon, negation cues, hashed n-gram embeddings.

Needs no model weights, so tests, the CPU demo and users without GPUs get the same
`ReportAnalysis` interface as the RaTE-NER backend. It is a rule-based stand-in, not a
replacement: it knows chest X-ray vocabulary as written in IU-XRay / MIMIC findings and nothing
else.

* Terms are matched on whole words, longest first, case-insensitively and plural-insensitively
  ("opacities" = "opacity"); a word belongs to at most one entity.
* Negation (NegEx-like, per clause): a pre-cue ("no", "without", "negative for", "no evidence
  of", "free of", "not", ...) negates the ABNORMALITY/DISEASE terms after it; a post-cue
  ("is not seen", "not identified", "has resolved", "absent", ...) the ones before it. A clause
  ends at ";", ":", "but", "however", "although", "except", "which". Negated terms become
  NON-ABNORMALITY / NON-DISEASE. Statements of normality ("clear", "normal", "unremarkable",
  "within normal limits", "intact", ...) are NON-ABNORMALITY entities themselves, as RaTE-NER
  tags them; ANATOMY is never negated.
* Embeddings: signed feature hashing of each word's character 3-5-grams (with word-boundary
  marks) plus the word itself, over the term's canonical concept (synonyms share one, e.g.
  "effusion" -> "pleural effusion"), L2-normalised: deterministic across processes, and
  similar spellings get high cosine.

Bad input: empty/whitespace-only text gives no sentences and no entities; text without any
terminator is one sentence; non-ASCII characters never match a term but never fail; long
texts are analysed in full (linear in the number of sentences; quadratic within one sentence,
whose terms are each checked against its negation cues).
"""
from __future__ import annotations

import re
import zlib
from functools import lru_cache
from typing import Sequence

import numpy as np

from rewards.entities.types import (
    ABNORMALITY,
    ANATOMY,
    DISEASE,
    NON_ABNORMALITY,
    NON_DISEASE,
    Entity,
    ReportAnalysis,
    sentence_of,
)
from templates.report import normalize, split_sentences

DEFAULT_DIM = 512

# surface form -> canonical concept (None: the surface itself). Surfaces are matched on whole
# words after `_stem`, so plurals need no entry.
_ABNORMALITY_TERMS: dict[str, str | None] = {
    "effusion": "pleural effusion", "pleural effusion": None, "pleural fluid": "pleural effusion",
    "pneumothorax": None, "pneumothoraces": "pneumothorax",
    "consolidation": None, "focal consolidation": "consolidation", "airspace consolidation": "consolidation",
    "airspace disease": "airspace opacity", "airspace opacity": None, "air space disease": "airspace opacity",
    "focal airspace disease": "airspace opacity", "opacity": None, "opacification": "opacity",
    "density": "opacity", "infiltrate": "opacity", "interstitial opacity": None,
    "interstitial markings": None, "interstitial prominence": "interstitial markings",
    "nodule": None, "nodular opacity": "nodule", "mass": None, "lesion": None, "cavitary lesion": None,
    "atelectasis": None, "subsegmental atelectasis": "atelectasis", "collapse": "atelectasis",
    "edema": None, "pulmonary edema": "edema", "interstitial edema": "edema",
    "vascular congestion": None, "pulmonary vascular congestion": "vascular congestion",
    "congestion": "vascular congestion", "engorgement": "vascular congestion",
    "scarring": None, "scar": "scarring", "fibrotic changes": "scarring",
    "granuloma": None, "calcified granuloma": "granuloma", "calcified nodule": "granuloma",
    "calcification": None, "calcified": "calcification", "fracture": None, "rib fracture": "fracture",
    "deformity": None, "blunting": None, "thickening": None, "pleural thickening": None,
    "enlarged": "enlargement", "enlargement": None, "prominence": None, "prominent": "prominence",
    "tortuosity": None, "tortuous": "tortuosity", "ectasia": "tortuosity", "ectatic": "tortuosity",
    "hyperinflation": None, "hyperinflated": "hyperinflation", "hyperexpanded": "hyperinflation",
    "hyperexpansion": "hyperinflation", "hypoinflation": None, "hypoinflated": "hypoinflation",
    "low lung volumes": "hypoinflation", "elevation": None, "elevated": "elevation", "widening": None,
    "lucency": None, "crowding": None, "bronchovascular crowding": "crowding",
    "degenerative changes": None, "degenerative disease": "degenerative changes", "spondylosis": None,
    "osteophytes": None, "spurring": "osteophytes", "scoliosis": None, "dextroscoliosis": "scoliosis",
    "levoscoliosis": "scoliosis", "kyphosis": None, "lymphadenopathy": None, "adenopathy": "lymphadenopathy",
    "hernia": None, "hiatal hernia": None, "free air": "pneumoperitoneum", "pneumoperitoneum": None,
    "free intraperitoneal air": "pneumoperitoneum", "abnormality": None, "acute abnormality": "abnormality",
    "acute cardiopulmonary abnormality": "abnormality", "acute findings": "abnormality",
    "acute process": "abnormality", "acute cardiopulmonary process": "abnormality",
    "active disease": "abnormality", "acute cardiopulmonary findings": "abnormality",
    "cardiopulmonary findings": "abnormality", "acute radiographic cardiopulmonary process": "abnormality",
    "cardiopulmonary process": "abnormality", "acute radiographic abnormality": "abnormality",
    "acute pulmonary findings": "abnormality", "acute osseous abnormality": "abnormality", "eventration": None, "flattening": None, "dislocation": None,
    "cardiomediastinal enlargement": "enlargement",
    # devices and post-surgical changes
    "sternotomy": None, "median sternotomy": "sternotomy", "sternotomy wires": "sternotomy",
    "surgical clips": None, "clips": "surgical clips", "catheter": None, "central venous catheter": "catheter",
    "picc": "catheter", "picc line": "catheter", "port": "catheter", "pacemaker": None, "leads": "pacemaker",
    "generator": "pacemaker", "endotracheal tube": None, "tube": None, "stent": None, "cabg": "sternotomy",
    "tracheostomy": None, "foreign body": None, "surgical changes": None, "postsurgical changes": "surgical changes",
}
_DISEASE_TERMS: dict[str, str | None] = {
    "cardiomegaly": None, "enlarged heart": "cardiomegaly", "cardiac enlargement": "cardiomegaly",
    "pneumonia": None, "emphysema": None, "copd": None, "chronic obstructive pulmonary disease": "copd",
    "chronic obstructive lung disease": "copd", "tuberculosis": None, "fibrosis": None,
    "pulmonary fibrosis": "fibrosis", "atherosclerosis": None, "atherosclerotic disease": "atherosclerosis",
    "aneurysm": None, "malignancy": None, "metastatic disease": "malignancy", "metastases": "malignancy",
    "infection": None, "heart failure": None, "congestive heart failure": "heart failure", "chf": "heart failure",
    "hypertension": None, "sarcoidosis": None, "bronchitis": None, "asthma": None, "osteopenia": None,
    "granulomatous disease": None, "disease": None, "cardiopulmonary disease": "disease",
    "acute cardiopulmonary disease": "disease", "acute disease": "disease", "bronchiectasis": None,
}
_NORMAL_TERMS: dict[str, str | None] = {
    "clear": None, "normal": None, "unremarkable": None, "within normal limits": "normal",
    "intact": None, "well expanded": "expanded", "well aerated": "expanded", "negative": None,
    "normally inflated": "expanded", "grossly normal": "normal",
}
_ANATOMY_TERMS: dict[str, str | None] = {
    "lungs": "lung", "lung": None, "heart": None, "heart size": "heart", "cardiac silhouette": "heart",
    "cardiac contour": "heart", "cardiac": "heart", "cardiomediastinal silhouette": "mediastinum",
    "cardiomediastinal contour": "mediastinum", "mediastinum": None, "mediastinal contour": "mediastinum",
    "mediastinal silhouette": "mediastinum", "mediastinal": "mediastinum",
    "pulmonary vascularity": "pulmonary vasculature", "pulmonary vasculature": None,
    "vascularity": "pulmonary vasculature", "vasculature": "pulmonary vasculature",
    "costophrenic angle": None, "costophrenic sulcus": "costophrenic angle", "hemidiaphragm": "diaphragm",
    "diaphragm": None, "pleura": None, "pleural space": "pleura", "hilum": None, "hila": "hilum",
    "hilar contour": "hilum", "hilar": "hilum", "aorta": None, "thoracic aorta": "aorta", "aortic arch": "aorta",
    "aortic knob": "aorta", "trachea": None, "spine": None, "thoracic spine": "spine", "vertebral body": "spine",
    "osseous structures": "bones", "bony structures": "bones", "bones": None, "skeletal structures": "bones",
    "rib": None, "clavicle": None, "shoulder": None, "soft tissues": None, "upper abdomen": "abdomen",
    "abdomen": None, "right upper lobe": None, "right middle lobe": None, "right lower lobe": None,
    "left upper lobe": None, "left lower lobe": None, "lingula": None, "lung base": "lung base",
    "base": "lung base", "bibasilar": "lung base", "apex": "lung apex", "apices": "lung apex",
    "biapical": "lung apex", "midlung": None, "retrocardiac": None, "perihilar": "hilum", "chest": None,
    "thorax": "chest", "hemithorax": "chest", "airways": None, "pulmonary artery": None, "svc": None,
    "atrium": None, "ventricle": None, "humerus": None, "stomach": None, "bowel": None, "breast": None,
    "nipple": None, "lung volumes": "lung", "pleural": "pleura", "pulmonary": "lung",
}

_PRE_NEGATION = ("no", "without", "negative for", "no evidence of", "free of", "not", "absence of", "nor",
                 "neither", "no sign of", "no signs of", "rather than", "resolution of", "resolved")
_POST_NEGATION = ("not seen", "not identified", "not visualized", "not present", "not appreciated",
                  "not demonstrated", "not evident", "absent", "has resolved", "have resolved", "resolved",
                  "ruled out", "excluded")
_CLAUSE_BREAKS = ("but", "however", "although", "though", "except", "which", "with the exception of", ";", ":")

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+|[;:]")
_NEGATABLE = {ABNORMALITY: NON_ABNORMALITY, DISEASE: NON_DISEASE}


def _stem(word: str) -> str:
    """Plural folding, enough for radiology nouns ("opacities" -> "opacity", "lungs" -> "lung")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(_stem(m.group().lower()) for m in _TOKEN_RE.finditer(phrase))


def _build_terms() -> dict[tuple[str, ...], tuple[str, str]]:
    terms: dict[tuple[str, ...], tuple[str, str]] = {}
    for entity_type, table in ((ABNORMALITY, _ABNORMALITY_TERMS), (DISEASE, _DISEASE_TERMS),
                               (NON_ABNORMALITY, _NORMAL_TERMS), (ANATOMY, _ANATOMY_TERMS)):
        for surface, concept in table.items():
            terms[_key(surface)] = (entity_type, " ".join(_key(concept or surface)))
    return terms


_TERMS = _build_terms()
_PRE_CUES = frozenset(_key(c) for c in _PRE_NEGATION)
_POST_CUES = frozenset(_key(c) for c in _POST_NEGATION)
_BREAKS = frozenset(_key(c) for c in _CLAUSE_BREAKS)
_MAX_TERM = max(len(k) for k in (*_TERMS, *_PRE_CUES, *_POST_CUES, *_BREAKS))


@lru_cache(maxsize=65536)
def _cached_embedding(text: str, dim: int) -> np.ndarray:
    vector = np.zeros(dim, dtype=np.float32)
    for word in text.lower().split():
        features = [word.encode()]
        marked = f"<{word}>"
        features += [marked[i:i + n].encode() for n in (3, 4, 5) for i in range(len(marked) - n + 1)]
        for feature in features:
            digest = zlib.crc32(feature)
            vector[digest % dim] += 1.0 if (digest // dim) & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    if norm > 0:
        vector /= norm
    vector.setflags(write=False)
    return vector


def hashed_ngram_embedding(text: str, dim: int = DEFAULT_DIM) -> np.ndarray:
    """Deterministic L2-normalised signed-hash vector of a phrase's character 3-5-grams (zero vector if no words)."""
    return _cached_embedding(" ".join(_key(text)), dim)


class LexiconAnalyzer:
    """The `EntityAnalyzer` protocol without model weights (see the module docstring)."""

    name = "lexicon"

    def __init__(self, dim: int = DEFAULT_DIM):
        if dim < 8:
            raise ValueError(f"embedding dim must be >= 8, got {dim}")
        self.dim = dim

    def analyze(self, reports: Sequence[str]) -> list[ReportAnalysis]:
        return [self.analyze_one(report) for report in reports]

    def analyze_one(self, report: str) -> ReportAnalysis:
        sentences = tuple(split_sentences(report))
        text = normalize(report)
        found: list[tuple[int, int, str, str]] = []
        offset = 0
        for sentence in sentences:
            offset = text.find(sentence, offset)
            found.extend((start + offset, end + offset, kind, concept) for start, end, kind, concept in _tag(sentence))
            offset += len(sentence)
        entities = tuple(
            Entity(text[start:end], kind, start, end, sentence_of(text[start:end], sentences))
            for start, end, kind, _ in found
        )
        embeddings = np.stack([_cached_embedding(concept, self.dim) for *_, concept in found]) if found \
            else np.zeros((0, self.dim), dtype=np.float32)
        return ReportAnalysis(text=text, sentences=sentences, entities=entities, embeddings=embeddings)


def _tag(sentence: str) -> list[tuple[int, int, str, str]]:
    """(start, end, type, concept) of the terms of one sentence, negation applied per clause."""
    tokens = [(m.start(), m.end(), _stem(m.group().lower())) for m in _TOKEN_RE.finditer(sentence)]
    words = [w for *_, w in tokens]
    spans: list[tuple[int, int, str, str]] = []  # token start, token end (exclusive), kind, concept
    cues: list[tuple[int, str]] = []  # token index, "pre" | "post" | "break"
    i = 0
    while i < len(words):
        for length in range(min(_MAX_TERM, len(words) - i), 0, -1):
            key = tuple(words[i:i + length])
            if key in _BREAKS:
                cues.append((i, "break"))
            elif key in _PRE_CUES or key in _POST_CUES:
                # "resolved" is both: "resolved effusion" and "effusion resolved".
                if key in _PRE_CUES:
                    cues.append((i, "pre"))
                if key in _POST_CUES:
                    cues.append((i, "post"))
            elif key in _TERMS:
                kind, concept = _TERMS[key]
                spans.append((i, i + length, kind, concept))
            else:
                continue
            i += length
            break
        else:
            i += 1
    tagged = []
    for first, last, kind, concept in spans:
        if kind in _NEGATABLE and _negated(first, cues):
            kind = _NEGATABLE[kind]
        tagged.append((tokens[first][0], tokens[last - 1][1], kind, concept))
    return tagged


def _negated(position: int, cues: list[tuple[int, str]]) -> bool:
    """A pre-cue before the term or a post-cue after it, with no clause break in between."""
    before = [kind for index, kind in cues if index < position]
    after = [kind for index, kind in cues if index > position]
    pre = next((kind for kind in reversed(before) if kind in ("pre", "break")), None) == "pre"
    post = next((kind for kind in after if kind in ("post", "break")), None) == "post"
    return pre or post
