"""Free-text report section parsing (MIMIC-CXR style headers and their variants)."""
from __future__ import annotations

import pytest

import textwrap

from datasets_registry.sections import parse_report
from templates.report import normalize

MIMIC_STYLE = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with new onset ascites  // eval for infection

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows.

 IMPRESSION:

 No acute cardiopulmonary process.
"""


def test_mimic_style_report_splits_into_sections():
    sections = parse_report(MIMIC_STYLE)
    assert sections.indication == "___F with new onset ascites // eval for infection"
    # EXAMINATION (the exam performed) and TECHNIQUE (how it was taken) stay separate sections.
    assert sections.examination == "CHEST (PA AND LAT)" and sections.technique == "Chest PA and lateral"
    assert sections.comparison == "None."
    assert sections.findings == ("There is no focal consolidation, pleural effusion or pneumothorax. "
                                 "Bilateral nodular opacities that most likely represent nipple shadows.")
    assert sections.impression == "No acute cardiopulmonary process."


@pytest.mark.parametrize("header, field", [
    ("HISTORY", "indication"), ("CLINICAL HISTORY", "indication"), ("REASON FOR EXAM", "indication"),
    ("Indication", "indication"), ("COMPARISONS", "comparison"), ("PRIOR STUDIES", "comparison"),
    ("FINDINGS AND IMPRESSION", "findings"), ("Findings", "findings"), ("CONCLUSION", "impression"),
    ("FINDINGS/ IMPRESSION", "findings"), ("IMPRESSION AND FINDINGS", "findings"), ("PRELIMINARY FINDINGS", "findings"),
    ("EXAM", "examination"), ("TYPE OF EXAMINATION", "examination"), ("TECHNIQUE", "technique"),
    ("REFERENCE EXAM", "comparison"), ("COMPARISON FILM", "comparison"), ("PATIENT HISTORY", "indication"),
])
def test_header_variants(header, field, iu_findings):
    text = iu_findings[7]
    sections = parse_report(f"{header}:\n{text}\n")
    assert getattr(sections, field) == normalize(text)


def test_unknown_upper_case_header_ends_a_section_but_prose_with_a_colon_does_not(iu_findings):
    report = (f"FINDINGS: {iu_findings[0]}\nLungs: clear.\nNOTIFICATION: The findings were discussed with Dr. ___.\n"
              f"IMPRESSION: {iu_findings[1]}")
    sections = parse_report(report)
    assert sections.findings == normalize(f"{iu_findings[0]} Lungs: clear.")
    assert "discussed" not in sections.findings and "discussed" not in sections.impression
    assert sections.impression == normalize(iu_findings[1])


def test_report_without_findings_header_has_no_findings():
    sections = parse_report("INDICATION: Cough.\nIMPRESSION: No acute process.")
    assert sections.findings is None and sections.impression == "No acute process."
    assert parse_report("").findings is None


def test_real_iu_sections_round_trip(iu_reports):
    """IU-XRay's own sections, written as a MIMIC-style report, parse back unchanged."""
    rows = [row for row in iu_reports if row["findings"].strip() and row["impression"].strip()][:300]
    for row in rows:
        report = (f"FINAL REPORT\nINDICATION: {row['indication']}\nCOMPARISON: {row['comparison']}\n\n"
                  f"FINDINGS:\n{row['findings']}\n\nIMPRESSION:\n{row['impression']}\n")
        sections = parse_report(report)
        assert sections.findings == normalize(row["findings"])
        assert sections.impression == normalize(row["impression"])
        assert sections.indication == (normalize(row["indication"]) or None)


def _mimic_report(row: dict, title: str, wrap: bool = False) -> str:
    """A MIMIC-style report whose findings sit under `title` (a view title) instead of FINDINGS:."""
    def body(text: str) -> str:
        return "\n ".join(textwrap.wrap(text, 75, break_on_hyphens=False)) if wrap else text
    return (f"                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n\n"
            f" INDICATION:  {body(row['indication'])}\n\n COMPARISON:  {body(row['comparison'])}\n\n"
            f" {title}\n\n {body(row['findings'])}\n\n IMPRESSION:\n\n {body(row['impression'])}\n")


@pytest.mark.parametrize("title", [
    "CHEST, TWO VIEWS:", "PA AND LATERAL VIEWS OF THE CHEST:", "PORTABLE AP CHEST:", "CHEST (PA AND LAT):",
    # Title lines without a colon: they end the section above instead of gluing onto it.
    "CHEST, TWO VIEWS", "PA AND LATERAL VIEWS OF THE CHEST",
])
def test_view_title_headers_introduce_the_findings(title, iu_reports):
    row = next(r for r in iu_reports if r["findings"].strip() and r["impression"].strip() and r["indication"].strip())
    sections = parse_report(_mimic_report(row, title))
    assert sections.findings == normalize(row["findings"])
    assert sections.indication == normalize(row["indication"])
    assert sections.comparison == (normalize(row["comparison"]) or None)
    assert sections.impression == normalize(row["impression"]) and sections.examination == "CHEST (PA AND LAT)"


def test_real_iu_findings_under_a_view_title_round_trip(iu_reports):
    """Wrapped like MIMIC text, 300 real reports under a colon-less view title parse back unchanged."""
    rows = [row for row in iu_reports if row["findings"].strip() and row["impression"].strip()][:300]
    for row in rows:
        sections = parse_report(_mimic_report(row, "PA AND LATERAL VIEWS OF THE CHEST", wrap=True))
        assert sections.findings == normalize(row["findings"])
        assert sections.indication == (normalize(row["indication"]) or None)
        assert sections.impression == normalize(row["impression"])


def test_view_title_gives_way_to_a_findings_section(iu_findings):
    # An empty report title above the real sections (MIT-LCP's example, p10/p10103318/s57408307).
    titled = f" CHEST, PA LATERAL:\n\n INDICATION:  Cough.\n\n FINDINGS:\n {iu_findings[0]}\n IMPRESSION: Normal.\n"
    assert parse_report(titled).findings == normalize(iu_findings[0])
    # With FINDINGS text of its own, a view title's text is not the findings.
    both = f" PORTABLE AP CHEST:  Comparison to ___.\n\n FINDINGS:  {iu_findings[1]}\n"
    assert parse_report(both).findings == normalize(iu_findings[1])


def test_title_lines_end_sections_but_a_first_body_line_is_text(iu_findings):
    report = (f" EXAMINATION:\n CHEST (PA AND LAT)\n\n FINDINGS:\n {iu_findings[2]}\n\n"
              " IMPRESSION\n\n No acute process.\n")
    sections = parse_report(report)
    assert sections.examination == "CHEST (PA AND LAT)"
    assert sections.findings == normalize(iu_findings[2]) and sections.impression == "No acute process."
    # Upper-case lines that name no section stay text.
    shouted = parse_report(f"FINDINGS: {iu_findings[3]}\n NO PNEUMOTHORAX\n")
    assert shouted.findings == normalize(f"{iu_findings[3]} NO PNEUMOTHORAX")
