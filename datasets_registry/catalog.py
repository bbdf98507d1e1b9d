"""The data sets `editgrpo convert` knows, their swift `--dataset` names and conversion defaults.

The paper (docs/algorithm.md §8): up to 6 images for MIMIC-CXR/ReXGradient and 2 for IU-XRay/PadChest-GR; ReXGradient
drops studies with more images and has no priors; the others keep the first views in
frontal-first order.
"""
from __future__ import annotations

from dataclasses import dataclass

from datasets_registry.pipeline import ConvertOptions


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # `editgrpo convert` name
    swift_name: str  # `--dataset` name registered in swift
    module: str  # datasets_registry.<module>.load(src, **kwargs) reads the native layout
    defaults: ConvertOptions


CONVERTERS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec("mimic-cxr", "mimic_cxr_editgrpo", "mimic_cxr", ConvertOptions(max_images=6)),
        DatasetSpec("rexgradient", "rexgradient_editgrpo", "rexgradient",
                    ConvertOptions(max_images=6, over_max="drop", priors=False)),
        DatasetSpec("iu-xray", "iu_xray_editgrpo", "iu_xray", ConvertOptions(max_images=2, min_images=2, priors=False)),
        DatasetSpec("padchest-gr", "padchest_gr_editgrpo", "padchest_gr", ConvertOptions(max_images=2)),
    )
}
SYNTHETIC_SWIFT_NAME = "cxr_synthetic_editgrpo"
