"""A generated chest X-ray report task for the CPU demo and the tests (nothing is downloaded).

Each study has a frontal (PA) and a lateral grayscale image whose drawn structures encode its
findings, and a FINDINGS report that states every finding, present or negated, with phrasings
modelled on real IU-XRay text. Everything is a pure function of (seed, split, index), so a study
does not depend on how many others are generated and re-running gives byte-identical files.

Image convention (as on a radiograph): air is dark, soft tissue grey, bone and metal bright;
the patient's right is on the image's left.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from swift_plugins.editgrpo.sentences import join_sentences
from templates.prompt import StudyImage, build_messages

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
IMAGE_SIZE = 112
_SPLIT_STREAM = {"train": 0, "test": 1}


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


# --------------------------------------------------------------------------- findings

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


# --------------------------------------------------------------------------- reports
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


# --------------------------------------------------------------------------- images

@dataclass(frozen=True)
class _Geometry:
    """Frontal-view layout in pixels, jittered per study so that no two normals look alike."""

    size: int
    cx: float  # body midline
    lung_top: float
    lung_bottom: float
    lung_half_width: float  # each lung's horizontal semi-axis
    lung_gap: float  # distance from midline to each lung's inner edge
    heart_cy: float
    heart_half_width: float
    heart_half_height: float

    def lung_box(self, side: str) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the patient's `side` lung (patient right = image left)."""
        if side == "right":
            x1 = self.cx - self.lung_gap
            return (x1 - 2 * self.lung_half_width, self.lung_top, x1, self.lung_bottom)
        x0 = self.cx + self.lung_gap
        return (x0, self.lung_top, x0 + 2 * self.lung_half_width, self.lung_bottom)


# Cardiothoracic ratio: normal ≤ 0.45, cardiomegaly ≥ 0.58 (the classic threshold is 0.5).
NORMAL_CTR = (0.36, 0.45)
ENLARGED_CTR = (0.58, 0.68)

_BODY, _LUNG, _HEART, _BONE, _FLUID, _METAL = 110, 40, 175, 200, 135, 250


def _geometry(findings: Findings, size: int, rng: np.random.Generator) -> _Geometry:
    s = size
    cx = s / 2 + rng.uniform(-0.02, 0.02) * s
    lung_half_width = rng.uniform(0.17, 0.19) * s
    lung_gap = rng.uniform(0.05, 0.065) * s
    thorax_width = 2 * (lung_gap + 2 * lung_half_width)
    ctr = rng.uniform(*(ENLARGED_CTR if findings.cardiomegaly else NORMAL_CTR))
    return _Geometry(
        size=s,
        cx=cx,
        lung_top=rng.uniform(0.12, 0.16) * s,
        lung_bottom=rng.uniform(0.78, 0.82) * s,
        lung_half_width=lung_half_width,
        lung_gap=lung_gap,
        heart_cy=rng.uniform(0.62, 0.66) * s,
        heart_half_width=ctr * thorax_width / 2,
        heart_half_height=rng.uniform(0.11, 0.13) * s,
    )


def _sides(side: str) -> tuple[str, ...]:
    return ("right", "left") if side == "bilateral" else (side,)


def _lung_markings(draw: ImageDraw.ImageDraw, g: _Geometry, rng: np.random.Generator) -> None:
    """Faint branching vessels fanning out from each hilum."""
    for side in ("right", "left"):
        x0, y0, x1, y1 = g.lung_box(side)
        hilum_x = x1 - 0.15 * (x1 - x0) if side == "right" else x0 + 0.15 * (x1 - x0)
        hilum_y = y0 + 0.45 * (y1 - y0)
        for _ in range(9):
            angle = rng.uniform(-1.2, 1.2) + (np.pi if side == "right" else 0.0)
            length = rng.uniform(0.35, 0.8) * (x1 - x0)
            end = (hilum_x + length * np.cos(angle), hilum_y + length * np.sin(angle) * 1.3)
            draw.line([(hilum_x, hilum_y), end], fill=_LUNG + 28, width=1)


def _draw_frontal(findings: Findings, g: _Geometry, rng: np.random.Generator) -> Image.Image:
    s = g.size
    image = Image.new("L", (s, s), 10)
    draw = ImageDraw.Draw(image)
    # body and lungs
    draw.ellipse([g.cx - 0.47 * s, 0.05 * s, g.cx + 0.47 * s, 1.1 * s], fill=_BODY)
    for side in ("right", "left"):
        draw.ellipse(g.lung_box(side), fill=_LUNG)
    _lung_markings(draw, g, rng)
    if findings.edema:  # perihilar haze: bat-wing opacities fading outwards from each hilum
        for side in ("right", "left"):
            x0, y0, x1, y1 = g.lung_box(side)
            inner = x1 if side == "right" else x0
            for step in range(4):
                w = (x1 - x0) * (0.25 + 0.12 * step)
                cy = y0 + 0.45 * (y1 - y0)
                box = [inner - w, cy - 0.22 * (y1 - y0), inner + w, cy + 0.22 * (y1 - y0)]
                draw.ellipse(box, fill=None, outline=_LUNG + 45 - 6 * step, width=2)
            draw.ellipse(
                [inner - 0.3 * (x1 - x0), y0 + 0.33 * (y1 - y0), inner + 0.3 * (x1 - x0), y0 + 0.58 * (y1 - y0)],
                fill=_LUNG + 50,
            )
    if findings.consolidation:
        side = "right" if findings.consolidation.startswith("right") else "left"
        x0, y0, x1, y1 = g.lung_box(side)
        upper = "upper" in findings.consolidation
        cy = y0 + (0.3 if upper else 0.7) * (y1 - y0)
        cx = (x0 + x1) / 2
        for _ in range(7):  # patchy: overlapping blobs of varying density
            r = rng.uniform(0.05, 0.09) * s
            px, py = cx + rng.normal(0, 0.05 * s), cy + rng.normal(0, 0.05 * s)
            draw.ellipse([px - r, py - r, px + r, py + r], fill=int(rng.uniform(115, 140)))
    if findings.atelectasis:
        for side in _sides(findings.atelectasis):  # a thin horizontal band just above the base
            x0, y0, x1, y1 = g.lung_box(side)
            y = y0 + 0.8 * (y1 - y0)
            draw.line([(x0 + 0.2 * (x1 - x0), y), (x1 - 0.2 * (x1 - x0), y + 2)], fill=140, width=3)
    if findings.pleural_effusion:
        depth = 0.22 if findings.effusion_size == "small" else 0.38
        for side in _sides(findings.pleural_effusion):
            x0, y0, x1, y1 = g.lung_box(side)
            level = y1 - depth * (y1 - y0)
            # meniscus: fluid climbs the lateral chest wall
            lateral_x = x0 if side == "right" else x1
            medial_x = x1 if side == "right" else x0
            polygon = [
                (medial_x, level + 0.04 * s),
                (lateral_x, level - 0.06 * s),
                (lateral_x, y1 + 0.02 * s),
                (medial_x, y1 + 0.02 * s),
            ]
            draw.polygon(polygon, fill=_FLUID)
    # mediastinum over the parenchyma: spine, then the heart slightly to the patient's left
    draw.rectangle([g.cx - 0.045 * s, 0.05 * s, g.cx + 0.045 * s, s], fill=_BONE - 30)
    heart_cx = g.cx + 0.2 * g.heart_half_width
    draw.ellipse(
        [
            heart_cx - g.heart_half_width,
            g.heart_cy - g.heart_half_height,
            heart_cx + g.heart_half_width,
            g.heart_cy + g.heart_half_height,
        ],
        fill=_HEART,
    )
    if findings.pneumothorax:
        x0, y0, x1, y1 = g.lung_box(findings.pneumothorax)
        # the collapsed lung's edge (a thin pleural line), beyond it air without markings
        inset = 0.28 * (x1 - x0)
        draw.ellipse([x0, y0, x1, y0 + 0.55 * (y1 - y0)], fill=15)
        draw.arc(
            [x0 + inset, y0 + 0.1 * (y1 - y0), x1 - inset, y0 + 0.9 * (y1 - y0)],
            start=180,
            end=360,
            fill=_LUNG + 70,
            width=1,
        )
    _draw_device(draw, findings.support_device, g, heart_cx)
    return image


def _draw_device(draw: ImageDraw.ImageDraw, device: str | None, g: _Geometry, heart_cx: float) -> None:
    s = g.size
    if device == "endotracheal_tube":
        draw.line([(g.cx, 0), (g.cx, g.lung_top + 0.2 * s)], fill=_METAL, width=2)
    elif device == "central_line":
        start = (g.cx - 0.2 * s, 0.0)
        draw.line([start, (g.cx - 0.06 * s, 0.22 * s), (g.cx - 0.03 * s, 0.45 * s)], fill=_METAL, width=2)
    elif device == "pacemaker":
        box = (g.cx + 0.22 * s, 0.14 * s)
        draw.rectangle([box[0], box[1], box[0] + 0.09 * s, box[1] + 0.06 * s], fill=_METAL)
        draw.line([box, (g.cx + 0.02 * s, 0.3 * s), (heart_cx, g.heart_cy + 0.3 * g.heart_half_height)], fill=_METAL, width=2)


def _draw_lateral(findings: Findings, g: _Geometry, rng: np.random.Generator) -> Image.Image:
    """Side view: one lung field, the heart anteriorly, fluid in the posterior sulcus."""
    s = g.size
    image = Image.new("L", (s, s), 10)
    draw = ImageDraw.Draw(image)
    draw.ellipse([0.12 * s, 0.05 * s, 0.88 * s, 1.1 * s], fill=_BODY)
    top, bottom = g.lung_top, g.lung_bottom
    draw.ellipse([0.2 * s, top, 0.8 * s, bottom], fill=_LUNG)
    draw.rectangle([0.74 * s, 0.05 * s, 0.82 * s, s], fill=_BONE - 30)  # spine, posterior
    depth = g.heart_half_width * 0.9
    draw.ellipse(
        [0.24 * s, g.heart_cy - g.heart_half_height, 0.24 * s + 2 * depth, g.heart_cy + g.heart_half_height],
        fill=_HEART,
    )
    if findings.edema:
        draw.ellipse([0.38 * s, 0.38 * s, 0.62 * s, 0.56 * s], fill=_LUNG + 45)
    if findings.consolidation:
        cy = (0.32 if "upper" in findings.consolidation else 0.66) * s
        for _ in range(5):
            r = rng.uniform(0.05, 0.08) * s
            px, py = 0.55 * s + rng.normal(0, 0.04 * s), cy + rng.normal(0, 0.04 * s)
            draw.ellipse([px - r, py - r, px + r, py + r], fill=int(rng.uniform(115, 140)))
    if findings.pleural_effusion:  # posterior costophrenic sulcus fills first
        height = (0.1 if findings.effusion_size == "small" else 0.18) * s
        draw.polygon(
            [(0.45 * s, bottom), (0.78 * s, bottom - height), (0.78 * s, bottom + 0.02 * s), (0.45 * s, bottom + 0.02 * s)],
            fill=_FLUID,
        )
    if findings.support_device == "pacemaker":
        draw.rectangle([0.2 * s, 0.14 * s, 0.26 * s, 0.2 * s], fill=_METAL)
    elif findings.support_device:
        draw.line([(0.4 * s, 0), (0.42 * s, 0.3 * s)], fill=_METAL, width=2)
    return image


def _finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Soften edges and add exposure jitter and quantum noise, as a detector would."""
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    pixels = pixels * rng.uniform(0.92, 1.08) + rng.normal(0.0, 4.0, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def render_study(findings: Findings, rng: np.random.Generator, size: int = IMAGE_SIZE) -> dict[str, Image.Image]:
    """{"PA": frontal, "LATERAL": lateral} images of one study."""
    geometry = _geometry(findings, size, rng)
    return {
        "PA": _finish(_draw_frontal(findings, geometry, rng), rng),
        "LATERAL": _finish(_draw_lateral(findings, geometry, rng), rng),
    }


# --------------------------------------------------------------------------- data set

def study_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """One independent stream per study: output does not depend on n_train/n_test."""
    return np.random.default_rng([seed, _SPLIT_STREAM[split], index])


def make_study(seed: int, split: str, index: int, size: int = IMAGE_SIZE) -> tuple[SyntheticStudy, dict[str, Image.Image]]:
    rng = study_rng(seed, split, index)
    findings = sample_findings(rng)
    report, sentence_findings = write_report(findings, rng)
    study = SyntheticStudy(
        study_id=f"syn-{split}-{index:05d}",
        subject_id=f"syn-p{seed}-{_SPLIT_STREAM[split]}{index:05d}",
        split=split,
        findings=findings,
        report=report,
        indication=_indication(findings, rng),
        sentences=sentence_findings,
    )
    return study, render_study(findings, rng, size)


def iter_studies(seed: int, split: str, n: int, size: int = IMAGE_SIZE) -> Iterator[tuple[SyntheticStudy, dict[str, Image.Image]]]:
    for index in range(n):
        yield make_study(seed, split, index, size)


def _sample_row(study: SyntheticStudy, image_paths: dict[str, Path]) -> dict:
    images = [StudyImage(str(path), view) for view, path in image_paths.items()]
    return {
        "messages": build_messages(images, study.report, indication=study.indication, technique=TECHNIQUE),
        "images": [image.path for image in images],
        "solution": study.report,
        "study_id": study.study_id,
        "subject_id": study.subject_id,
        "split": study.split,
        "views": list(image_paths),
        "prior_study_id": "",
        "indication": study.indication,
        "technique": TECHNIQUE,
        "comparison": "",
    }


@dataclass(frozen=True)
class GeneratedPaths:
    train: Path
    test: Path
    labels: Path  # study_id -> ground-truth findings (for telemetry and tests; not a swift column)


def generate(out_dir: str | Path, n_train: int, n_test: int, seed: int = 0, image_size: int = IMAGE_SIZE) -> GeneratedPaths:
    """Write images, `train.jsonl`, `test.jsonl` and `labels.jsonl` under `out_dir`.

    Files are written to temporary names and renamed at the end, so an interrupted run never
    leaves a jsonl that looks complete.
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train}, {n_test}")
    out = Path(out_dir).resolve()
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    paths = GeneratedPaths(out / "train.jsonl", out / "test.jsonl", out / "labels.jsonl")
    label_rows: list[str] = []
    for split, n, target in (("train", n_train, paths.train), ("test", n_test, paths.test)):
        rows: list[str] = []
        for study, images in iter_studies(seed, split, n, image_size):
            image_paths = {view: image_dir / f"{study.study_id}_{view.lower()}.png" for view in images}
            for view, image in images.items():
                image.save(image_paths[view], format="PNG")
            rows.append(json.dumps(_sample_row(study, image_paths)))
            label_rows.append(json.dumps({"study_id": study.study_id, **asdict(study.findings)}))
        _write_atomically(target, rows)
    _write_atomically(paths.labels, label_rows)
    return paths


def report_corpus(n: int, seed: int = 0) -> list[str]:
    """Report texts only (no images): cheap text for training the demo tokenizer."""
    texts = []
    for index in range(n):
        rng = study_rng(seed, "train", index)
        texts.append(write_report(sample_findings(rng), rng)[0])
    return texts


def _write_atomically(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
