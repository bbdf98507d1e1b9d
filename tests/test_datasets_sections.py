"""Free-text report section parsing (MIMIC-CXR style headers and their variants)."""
from __future__ import annotations

import pytest

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
    assert sections.technique == "CHEST (PA AND LAT) Chest PA and lateral"  # EXAMINATION and TECHNIQUE both describe it
    assert sections.comparison == "None."
    assert sections.findings == ("There is no focal consolidation, pleural effusion or pneumothorax. "
                                 "Bilateral nodular opacities that most likely represent nipple shadows.")
    assert sections.impression == "No acute cardiopulmonary process."


@pytest.mark.parametrize("header, field", [
    ("HISTORY", "indication"), ("CLINICAL HISTORY", "indication"), ("REASON FOR EXAM", "indication"),
    ("Indication", "indication"), ("COMPARISONS", "comparison"), ("PRIOR STUDIES", "comparison"),
    ("FINDINGS AND IMPRESSION", "findings"), ("Findings", "findings"), ("CONCLUSION", "impression"),
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
