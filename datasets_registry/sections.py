"""Free-text radiology report -> sections (FINDINGS, IMPRESSION, INDICATION, TECHNIQUE, COMPARISON).

MIMIC-CXR reports are semi-structured: upper-case headers at the start of a line followed by a
colon (`FINDINGS:`, `IMPRESSION:`, ...), with many variants (`HISTORY:`, `REASON FOR EXAM:`,
`COMPARISONS:`, `FINDINGS AND IMPRESSION:`, ...). A known header (any case) or an unknown
upper-case header at a line start ends the previous section; text before the first header
(e.g. `FINAL REPORT`) belongs to no section. Only the training target (FINDINGS) and the prompt
context (INDICATION/TECHNIQUE/COMPARISON) are kept; IMPRESSION is parsed so that it is never
mistaken for findings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from templates.report import normalize

# Canonical section for each header variant (compared upper-cased, single-spaced).
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
    "REASON FOR EXAM": "indication",
    "REASON FOR EXAMINATION": "indication",
    "REASON FOR STUDY": "indication",
    "CLINICAL INFORMATION": "indication",
    "TECHNIQUE": "technique",
    "EXAMINATION": "technique",
    "EXAM": "technique",
    "PROCEDURE": "technique",
    "STUDY": "technique",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "COMPARISON EXAM": "comparison",
    "COMPARISON STUDY": "comparison",
    "PRIOR STUDIES": "comparison",
    "PRIOR STUDY": "comparison",
    # Headers that only end the previous section.
    "FINAL REPORT": "other",
    "WET READ": "other",
    "NOTIFICATION": "other",
    "RECOMMENDATION": "other",
    "RECOMMENDATIONS": "other",
    "ADDENDUM": "other",
    "REFERENCE EXAM": "other",
}

_KNOWN = "|".join(sorted((re.escape(h).replace(r"\ ", r"\s+") for h in HEADER_SECTIONS), key=len, reverse=True))
# A header starts a line: a known header in any case, or any short upper-case header.
_HEADER_RE = re.compile(
    rf"^[ \t]*(?:(?P<known>{_KNOWN})|(?P<other>[A-Z][A-Z /&()-]{{2,40}}?))[ \t]*:",
    re.MULTILINE | re.IGNORECASE,
)
_UPPER_RE = re.compile(r"[A-Z][A-Z /&()-]{2,40}")


@dataclass(frozen=True)
class ReportSections:
    findings: str | None = None
    impression: str | None = None
    indication: str | None = None
    technique: str | None = None
    comparison: str | None = None


def _header_name(match: re.Match) -> str | None:
    """Canonical section of a header match, or None when the match is not a real header."""
    if match.group("known"):
        return HEADER_SECTIONS[" ".join(match.group("known").upper().split())]
    text = match.group("other")
    # Unknown headers only count when genuinely upper-case (the regex itself is case-insensitive).
    return "other" if _UPPER_RE.fullmatch(text) else None


def parse_report(text: str) -> ReportSections:
    """Sections of a free-text report; a section that appears twice is concatenated in order."""
    headers = [(m, name) for m in _HEADER_RE.finditer(text or "") if (name := _header_name(m))]
    parts: dict[str, list[str]] = {}
    for i, (match, name) in enumerate(headers):
        end = headers[i + 1][0].start() if i + 1 < len(headers) else len(text)
        body = normalize(text[match.end():end])
        if body and name != "other":
            parts.setdefault(name, []).append(body)
    joined = {name: " ".join(bodies) for name, bodies in parts.items()}
    return ReportSections(**joined)


def clean_section(value) -> str | None:
    """Whitespace-normalised section text; None for empty text and for non-text (e.g. a NaN
    that pandas wrote into a JSON export)."""
    text = normalize(value) if isinstance(value, str) else ""
    return text or None
