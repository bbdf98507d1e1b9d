"""Findings of a generated study and the FINDINGS report that states each one, present or negated.

Phrasings are modelled on real IU-XRay text; everything is a pure function of the generator passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from templates.report import join_sentences

FINDINGS = (
    "support_device",
    "cardiomegaly",
    "edema",
    "consolidation",
    "atelectasis",
    "pleural_effusion",
    "pneumothorax",
)
SIDES = ("right", "left", "bilateral")
LOBES = ("right upper lobe", "right lower lobe", "left upper lobe", "left lower lobe")
DEVICES = ("endotracheal_tube", "central_line", "pacemaker")
TECHNIQUE = "PA and lateral views of the chest."


@dataclass(frozen=True)
class Findings:
    """Ground truth of one study; the attributes a report sentence or a drawn structure needs."""

    cardiomegaly: bool = False
    edema: bool = False
    consolidation: str | None = None  # a lobe from LOBES
    atelectasis: str | None = None  # a side from SIDES
    pleural_effusion: str | None = None  # a side from SIDES
    effusion_size: str = "small"  # small | moderate
    pneumothorax: str | None = None  # right | left
    support_device: str | None = None  # a device from DEVICES

    def present(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in FINDINGS}


@dataclass(frozen=True)
class SyntheticStudy:
    study_id: str
    subject_id: str
    split: str
    findings: Findings
    report: str
    indication: str
    sentences: tuple[tuple[str, ...], ...] = field(default=())  # findings mentioned per sentence


def sample_findings(rng: np.random.Generator) -> Findings:
    """Independent-ish findings with clinically plausible correlations (edema ↔ large heart)."""
    cardiomegaly = rng.random() < 0.35
    edema = rng.random() < (0.35 if cardiomegaly else 0.08)
    effusion_p = 0.4 if (cardiomegaly or edema) else 0.15
    return Findings(
        cardiomegaly=cardiomegaly,
        edema=edema,
        consolidation=str(rng.choice(LOBES)) if rng.random() < 0.22 else None,
        atelectasis=str(rng.choice(SIDES)) if rng.random() < 0.18 else None,
        pleural_effusion=str(rng.choice(SIDES)) if rng.random() < effusion_p else None,
        effusion_size=str(rng.choice(("small", "moderate"))),
        pneumothorax=str(rng.choice(("right", "left"))) if rng.random() < 0.12 else None,
        support_device=str(rng.choice(DEVICES)) if rng.random() < 0.2 else None,
    )


# Phrasings follow frequent IU-XRay sentences; "{x}" slots take the side / lobe / size.

_POSITIVE: dict[str, tuple[str, ...]] = {
    "cardiomegaly": (
        "The heart is enlarged.",
        "Cardiomegaly is present.",
        "The cardiac silhouette is enlarged.",
        "There is cardiomegaly.",
        "Heart size is enlarged.",
    ),
    "edema": (
        "There is pulmonary edema.",
        "Mild interstitial pulmonary edema is present.",
        "Findings are consistent with pulmonary edema.",
        "Diffuse interstitial opacities consistent with edema.",
    ),
    "consolidation": (
        "There is consolidation in the {lobe}.",
        "Patchy airspace consolidation in the {lobe}.",
        "Focal consolidation is seen in the {lobe}.",
        "There is focal airspace consolidation in the {lobe}.",
    ),
    "atelectasis": (
        "There is {side_adj} basilar atelectasis.",
        "Linear atelectasis at the {side_base}.",
        "Streaky {side_adj} basilar opacities consistent with atelectasis.",
    ),
    "pleural_effusion": (
        "There is a {size} {side_adj} pleural effusion.",
        "{Size} {side_adj} pleural {effusions}.",
        "Blunting of the {side_angle} consistent with a {size} pleural effusion.",
    ),
    "pneumothorax": (
        "There is a {side} apical pneumothorax.",
        "A {side} pneumothorax is present.",
        "{Side} apical pneumothorax is seen.",
    ),
    "support_device": (),  # device specific, see _DEVICE_SENTENCES
}
_NEGATIVE: dict[str, tuple[str, ...]] = {
    "cardiomegaly": (
        "The heart is normal in size.",
        "Heart size is normal.",
        "Heart size within normal limits.",
        "Normal heart size and mediastinal contours.",
        "The cardiac silhouette is normal in size.",
    ),
    "edema": (
        "No pulmonary edema.",
        "There is no pulmonary edema.",
        "No typical findings of pulmonary edema.",
    ),
    "consolidation": (
        "No focal consolidation.",
        "There is no focal airspace consolidation.",
        "No focal areas of consolidation.",
        "The lungs are free of focal consolidation.",
    ),
    "atelectasis": (
        "No atelectasis.",
        "There is no atelectasis.",
    ),
    "pleural_effusion": (
        "No pleural effusion.",
        "There is no pleural effusion.",
        "No pleural effusions.",
    ),
    "pneumothorax": (
        "No pneumothorax.",
        "There is no pneumothorax.",
    ),
    "support_device": (
        "No support devices are seen.",
        "No lines or tubes are present.",
    ),
}
_DEVICE_SENTENCES = {
    "endotracheal_tube": (
        "Endotracheal tube tip is 4 cm above the carina.",
        "An endotracheal tube is in place with tip above the carina.",
    ),
    "central_line": (
        "A right internal jugular central venous catheter terminates in the SVC.",
        "Right IJ central venous catheter with tip in the lower SVC.",
    ),
    "pacemaker": (
        "Left chest wall pacemaker with a lead in the right ventricle.",
        "A left-sided pacemaker is present with lead tip in the right ventricle.",
    ),
}
# Common IU-XRay ways of negating two findings in one sentence.
_JOINT_NEGATIVE = {
    ("consolidation", "pleural_effusion", "pneumothorax"): (
        "No focal consolidation, pleural effusion, or pneumothorax.",
        "No focal consolidation, pneumothorax or pleural effusion.",
        "The lungs are clear without focal consolidation, effusion, or pneumothorax.",
    ),
    ("pleural_effusion", "pneumothorax"): (
        "No pleural effusion or pneumothorax.",
        "There is no pleural effusion or pneumothorax.",
        "No pneumothorax or pleural effusion.",
    ),
}
_FILLER = (
    "No acute bony abnormality.",
    "The osseous structures are intact.",
    "Visualized osseous structures are unremarkable.",
    "The mediastinal contours are normal.",
)
_INDICATIONS = {
    "support_device": ("Line placement.", "Evaluate tube position.", "Pacemaker check."),
    "cardiomegaly": ("Shortness of breath.", "Congestive heart failure.", "Dyspnea."),
    "edema": ("Shortness of breath.", "Congestive heart failure.", "Dyspnea."),
    "consolidation": ("Fever and cough.", "Pneumonia.", "Productive cough."),
    "pneumothorax": ("Chest pain.", "Trauma.", "Sudden shortness of breath."),
    None: ("Routine examination.", "Chest pain.", "Cough.", "Preoperative evaluation."),
}


def _slots(findings: Findings) -> dict[str, str]:
    effusion_side = findings.pleural_effusion or "right"
    atelectasis_side = findings.atelectasis or "right"
    side = findings.pneumothorax or "right"
    return {
        "lobe": findings.consolidation or LOBES[0],
        "side": side,
        "Side": side.capitalize(),
        "size": findings.effusion_size,
        "Size": findings.effusion_size.capitalize(),
        "effusions": "effusions" if findings.pleural_effusion == "bilateral" else "effusion",
        "side_angle": (
            "costophrenic angles bilaterally"
            if effusion_side == "bilateral"
            else f"{effusion_side} costophrenic angle"
        ),
        "side_base": (
            "lung bases bilaterally" if atelectasis_side == "bilateral" else f"{atelectasis_side} lung base"
        ),
        "side_adj": (
            ("bilateral" if findings.pleural_effusion == "bilateral" else effusion_side)
        ),
    }


def _positive_sentence(name: str, findings: Findings, rng: np.random.Generator) -> str:
    if name == "support_device":
        return str(rng.choice(_DEVICE_SENTENCES[findings.support_device]))
    slots = _slots(findings)
    if name == "atelectasis":  # side_adj slot refers to the atelectasis side here
        slots["side_adj"] = "bibasilar" if findings.atelectasis == "bilateral" else findings.atelectasis
        template = str(rng.choice(_POSITIVE[name]))
        if findings.atelectasis == "bilateral":
            template = template.replace("{side_adj} basilar", "bibasilar")
        return template.format(**slots)
    return str(rng.choice(_POSITIVE[name])).format(**slots)


def _joint_negative(name: str, present: dict[str, bool], rng: np.random.Generator) -> tuple[str, tuple[str, ...]] | None:
    """Half the time, negate `name` together with its usual companions in one sentence."""
    for names, phrasings in _JOINT_NEGATIVE.items():
        if names[0] == name and not any(present[n] for n in names) and rng.random() < 0.5:
            return str(rng.choice(phrasings)), names
    return None


def write_report(findings: Findings, rng: np.random.Generator) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """The FINDINGS text and, per sentence, which findings it states (for tests and telemetry).

    Order follows the usual read: devices, heart, lungs, pleura, bones.
    """
    present = findings.present()
    sentences: list[tuple[str, tuple[str, ...]]] = []
    stated: set[str] = set()
    for name in FINDINGS:
        if name in stated:
            continue
        joint = _joint_negative(name, present, rng)
        if joint is not None:
            sentences.append(joint)
        elif present[name]:
            sentences.append((_positive_sentence(name, findings, rng), (name,)))
        else:
            sentences.append((str(rng.choice(_NEGATIVE[name])), (name,)))
        stated.update(sentences[-1][1])
    if rng.random() < 0.3:
        sentences.append((str(rng.choice(_FILLER)), ()))
    text = join_sentences([s for s, _ in sentences])
    return text, tuple(names for _, names in sentences)


def _indication(findings: Findings, rng: np.random.Generator) -> str:
    present = [n for n, p in findings.present().items() if p and n in _INDICATIONS]
    key = str(rng.choice(present)) if present and rng.random() < 0.7 else None
    return str(rng.choice(_INDICATIONS[key]))
