"""CXR data sets: converters from native layouts to ms-swift jsonl, and swift dataset registration.

`CONVERTERS` maps the `editgrpo convert` name of each data set to its defaults (paper §8: up to
6 images for MIMIC-CXR/ReXGradient, 2 for IU-XRay/PadChest-GR; ReXGradient drops studies with
more images, the others keep the first views in frontal-first order). Importing this package
does not import swift; `registration.register_datasets()` does.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path

from .pipeline import ConversionSummary, ConvertOptions, convert_studies
from .records import ConversionError


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
        DatasetSpec("iu-xray", "iu_xray_editgrpo", "iu_xray", ConvertOptions(max_images=2, priors=False)),
        DatasetSpec("padchest-gr", "padchest_gr_editgrpo", "padchest_gr", ConvertOptions(max_images=2)),
    )
}
SYNTHETIC_SWIFT_NAME = "cxr_synthetic_editgrpo"


def convert(name: str, src: Path | str, out: Path | str, loader_options: dict | None = None,
            **overrides) -> ConversionSummary:
    """Convert data set `name` from `src` (native layout) into out/{train,validation,test}.jsonl.

    `overrides` replace fields of the data set's default ConvertOptions (max_images, over_max,
    skip_missing, placeholder_images, show_progress); `loader_options` go to the loader
    (e.g. `reports=` for MIMIC-CXR, `split_seed=` for IU-XRay).
    """
    if name not in CONVERTERS:
        raise ConversionError(f"unknown data set {name!r}; choose from {sorted(CONVERTERS)}")
    spec = CONVERTERS[name]
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ConversionError(f"{src}: not a directory")
    options = replace(spec.defaults, **{key: value for key, value in overrides.items() if value is not None})
    loaded = importlib.import_module(f"{__name__}.{spec.module}").load(src, **(loader_options or {}))
    return convert_studies(name, loaded, src, out, options)


__all__ = ["CONVERTERS", "ConversionError", "ConversionSummary", "ConvertOptions", "DatasetSpec", "convert"]
