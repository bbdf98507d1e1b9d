"""Drawn frontal (PA) and lateral radiographs whose structures encode a study's findings.

Convention (as on a radiograph): air is dark, soft tissue grey, bone and metal bright; the
patient's right is on the image's left.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from datasets_registry.synthetic.findings import Findings

IMAGE_SIZE = 112


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
