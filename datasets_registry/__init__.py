"""CXR data sets: converters from native layouts to ms-swift jsonl, and swift dataset registration.

`convert(name, src, out)` reads one data set of `catalog.CONVERTERS` in its native layout and
writes out/{train,validation,test}.jsonl; `register_datasets()` makes the converted files
available as swift `--dataset` names. Importing this package does not import swift.
"""
from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

from datasets_registry.catalog import CONVERTERS, SYNTHETIC_SWIFT_NAME, DatasetSpec
from datasets_registry.pipeline import ConversionSummary, ConvertOptions, convert_studies
from datasets_registry.records import ConversionError
from datasets_registry.registration import register_datasets


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


__all__ = ["CONVERTERS", "SYNTHETIC_SWIFT_NAME", "ConversionError", "ConversionSummary", "ConvertOptions", "DatasetSpec",
           "convert", "register_datasets"]
