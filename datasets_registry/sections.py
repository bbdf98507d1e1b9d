"""Free-text radiology report -> sections (FINDINGS, IMPRESSION, INDICATION, EXAMINATION, TECHNIQUE,
COMPARISON), with the semantics of MIT-LCP's MIMIC-CXR sectioner (`mimic-cxr/txt/section_parser.py`).

MIMIC-CXR reports are semi-structured: upper-case headers at the start of a line followed by a
colon (`FINDINGS:`, `IMPRESSION:`, ...), with many variants. A header ends the previous section:
a listed variant (`HEADER_SECTIONS`, any case), or any upper-case header, which is named as the
official sectioner names it: one containing IMPRESSION, FINDINGS, HISTORY or COMPARISON is that
section, one that names the views (`VIEW_TITLE_PHRASES`: `CHEST, TWO VIEWS:`, `PA AND LATERAL
VIEWS OF THE CHEST:`, `PORTABLE AP CHEST:`) is a view title, any other ends a section only.
Text before the first header (`FINAL REPORT`) belongs to no section.

* **View titles** introduce the findings the way the official sectioner reads them: their text
  is the FINDINGS when the report has no FINDINGS text of its own (MIT-LCP counts 1,735 reports
  under `CHEST, TWO VIEWS:` alone); otherwise it is dropped. A title with nothing under it (a
  report title above `INDICATION:`) is empty and ignored, as upstream.
* **Title lines without a colon** (`PA AND LATERAL VIEWS OF THE CHEST`, `IMPRESSION`, `FINAL
  REPORT` alone on a line, upper-case) are headers too, so they never glue onto the section
  above; only listed, main-section or view-title names count, and not on the line right under
  a header (`EXAMINATION:` / `CHEST (PA AND LAT)` is the examination's text).
* **EXAMINATION and TECHNIQUE** are separate sections (the exam performed vs. how it was taken).
* **FINDINGS AND IMPRESSION:** (and `FINDINGS/IMPRESSION:`, any header naming both) is taken as
  FINDINGS, our choice: the section describes the images, with the conclusion folded in, which
  is what the target is, and dropping the study loses it. MIT-LCP files it under impression (87
  `FINDINGS AND IMPRESSION` + 47 `FINDINGS/IMPRESSION` reports by its counts): where such a
  report has no separate FINDINGS, the study has findings here and none upstream.
* A section that appears twice is concatenated in order (upstream keeps the last one).

Only the training target (FINDINGS) and the prompt context are kept; IMPRESSION is parsed so
that it is never mistaken for findings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from templates.report import normalize

OTHER = "other"  # a header that only ends the previous section
VIEW = "view"  # a view title: the findings when the report has no FINDINGS text

# Canonical section for each header variant (compared upper-cased, single-spaced, no spaces
# around "/"); these are also recognised in any case ("Findings:").
HEADER_SECTIONS: dict[str, str] = {
    "FINDINGS": "findings",
    "FINDING": "findings",
    "FINDINGS AND IMPRESSION": "findings",
    "FINDINGS/IMPRESSION": "findings",
    "IMPRESSION": "impression",
    "IMPRESSIONS": "impression",
    "CONCLUSION": "impression",
    "CONCLUSIONS": "impression",
    "INDICATION": "indication",
    "INDICATIONS": "indication",
    "CLINICAL INDICATION": "indication",
    "HISTORY": "indication",
    "CLINICAL HISTORY": "indication",
    "PATIENT HISTORY": "indication",
    "REASON FOR EXAM": "indication",
    "REASON FOR EXAMINATION": "indication",
    "REASON FOR STUDY": "indication",
    "CLINICAL INFORMATION": "indication",
    "TECHNIQUE": "technique",
    "PROCEDURE": "technique",
    "EXAMINATION": "examination",
    "EXAM": "examination",
    "TYPE OF EXAMINATION": "examination",
    "STUDY": "examination",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "COMPARISON EXAM": "comparison",
    "COMPARISON STUDY": "comparison",
    "COMPARISON FILM": "comparison",
    "PRIOR STUDIES": "comparison",
    "PRIOR STUDY": "comparison",
    "REFERENCE EXAM": "comparison",
    "FINAL REPORT": OTHER,
    "WET READ": OTHER,
    "NOTIFICATION": OTHER,
    "RECOMMENDATION": OTHER,
    "RECOMMENDATIONS": OTHER,
    "RECOMMENDATION(S)": OTHER,
    "ADDENDUM": OTHER,
}
# An unlisted upper-case header containing one of these words is that section (first match wins:
# FINDINGS before IMPRESSION, see the module docstring).
MAIN_WORDS: tuple[tuple[str, str], ...] = (
    ("FINDINGS", "findings"), ("IMPRESSION", "impression"), ("HISTORY", "indication"), ("COMPARISON", "comparison"))
# A header containing one of these names the views of the study (the official sectioner's list).
VIEW_TITLE_PHRASES: tuple[str, ...] = (
    "CHEST", "PORTABLE", "PA AND LAT", "LATERAL AND PA", "AP AND LAT", "LATERAL AND AP", "FRONTAL AND",
    "TWO VIEWS", "FRONTAL VIEW", "PA VIEW", "AP VIEW", "ONE VIEW", "LATERAL VIEW", "BONE WINDOW",
    "FRONTAL UPRIGHT", "FRONTAL SEMI-UPRIGHT", "RIBS",
)

_NAME = r"[A-Z][A-Z ,/&()-]"
_KNOWN = "|".join(sorted((re.escape(h).replace(r"\ ", r"\s+") for h in HEADER_SECTIONS), key=len, reverse=True))
# A header starts a line: a listed header in any case, or any short upper-case header, then a colon.
_COLON_HEADER_RE = re.compile(
    rf"^[ \t]*(?:(?P<known>{_KNOWN})|(?P<other>{_NAME}{{2,40}}?))[ \t]*:",
    re.MULTILINE | re.IGNORECASE,
)
_UPPER_RE = re.compile(rf"{_NAME}{{2,40}}")
# A title line: a whole upper-case line without a colon.
_TITLE_LINE_RE = re.compile(rf"^[ \t]*(?P<title>{_NAME}{{2,60}}?)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ReportSections:
    findings: str | None = None
    impression: str | None = None
    indication: str | None = None
    examination: str | None = None
    technique: str | None = None
    comparison: str | None = None


@dataclass(frozen=True)
class _Header:
    start: int  # where the header's line starts (the previous section ends there)
    end: int  # where its text starts
    section: str
    title_line: bool


def _canonical(name: str) -> str:
    return re.sub(r" ?/ ?", "/", " ".join(name.upper().split()))


def _named_section(name: str) -> str | None:
    """Section of a header name by the official sectioner's rules; None for a name it does not know."""
    key = _canonical(name)
    if key in HEADER_SECTIONS:
        return HEADER_SECTIONS[key]
    for word, section in MAIN_WORDS:
        if word in key:
            return section
    return VIEW if any(phrase in key for phrase in VIEW_TITLE_PHRASES) else None


def _headers(text: str) -> list[_Header]:
    found = []
    for match in _COLON_HEADER_RE.finditer(text):
        name = match.group("known") or match.group("other")
        # Unknown headers only count when genuinely upper-case (the regex itself is case-insensitive).
        if match.group("known") or _UPPER_RE.fullmatch(name):
            found.append(_Header(match.start(), match.end(), _named_section(name) or OTHER, False))
    for match in _TITLE_LINE_RE.finditer(text):
        if section := _named_section(match.group("title")):
            found.append(_Header(match.start(), match.end(), section, True))
    headers: list[_Header] = []
    for header in sorted(found, key=lambda h: h.start):
        if header.title_line and headers and headers[-1].section != OTHER:
            gap = text[headers[-1].end:header.start]
            if not gap.strip() and gap.count("\n") <= 1:
                continue  # the line right under a header is that section's text, not a title
        headers.append(header)
    return headers


def parse_report(text: str) -> ReportSections:
    """Sections of a free-text report (see the module docstring for the rules)."""
    text = text or ""
    headers = _headers(text)
    parts: dict[str, list[str]] = {}
    for i, header in enumerate(headers):
        end = headers[i + 1].start if i + 1 < len(headers) else len(text)
        body = normalize(text[header.end:end])
        if body and header.section != OTHER:
            parts.setdefault(header.section, []).append(body)
    views = parts.pop(VIEW, [])
    if views and "findings" not in parts:
        parts["findings"] = views
    return ReportSections(**{name: " ".join(bodies) for name, bodies in parts.items()})


def clean_section(value) -> str | None:
    """Whitespace-normalised section text; None for empty text and for non-text (e.g. a NaN
    that pandas wrote into a JSON export)."""
    text = normalize(value) if isinstance(value, str) else ""
    return text or None
