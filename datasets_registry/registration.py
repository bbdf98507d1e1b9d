"""swift `--dataset` names for converted CXR data: `mimic_cxr_editgrpo`, `rexgradient_editgrpo`,
`iu_xray_editgrpo`, `padchest_gr_editgrpo` and the demo's `cxr_synthetic_editgrpo`.

Each name reads `$EDITGRPO_DATA_DIR/<dir>/<split>.jsonl` at load time, where <dir> is the
name without `_editgrpo` (e.g. `iu_xray`) and the split is chosen with swift's subset syntax:
`--dataset iu_xray_editgrpo` (train), `iu_xray_editgrpo:test`, `iu_xray_editgrpo:train/validation`.
`EDITGRPO_DATA_DIR` defaults to `./data`. Converted files can also be passed directly as paths
(`--dataset /data/iu_xray/test.jsonl`). swift is imported only inside `register_datasets()`.
"""
from __future__ import annotations

import os
from pathlib import Path

from datasets_registry.catalog import CONVERTERS, SYNTHETIC_SWIFT_NAME
from datasets_registry.records import SPLITS, ConversionError, normalize_split

DATA_DIR_ENV = "EDITGRPO_DATA_DIR"
SUFFIX = "_editgrpo"
DATASET_NAMES: tuple[str, ...] = tuple(spec.swift_name for spec in CONVERTERS.values()) + (SYNTHETIC_SWIFT_NAME,)


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def split_files(dataset_name: str, subsets: list[str] | None) -> list[Path]:
    """The jsonl files behind `dataset_name[:subset/...]`; a missing file is an error that says how to make it."""
    folder = data_dir() / dataset_name.removesuffix(SUFFIX)
    files = []
    for subset in subsets or ["train"]:
        split = normalize_split(subset)
        if split is None:
            raise ConversionError(f"{dataset_name}: unknown subset {subset!r}; use one of {list(SPLITS)}")
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise ConversionError(f"{dataset_name}: {path} not found. Convert the data set first "
                                  f"(`editgrpo convert ... --out {folder}`) or set {DATA_DIR_ENV}.")
        files.append(path)
    return files


def register_datasets() -> list[str]:
    """Registers the CXR data sets in swift's DATASET_MAPPING (idempotent); returns their names."""
    from swift.dataset import DatasetMeta, register_dataset
    from swift.dataset.loader import DatasetLoader

    class SplitFileLoader(DatasetLoader):
        """Loads the converted split files of a registered name instead of a hub repository."""

        def load(self, dataset_syntax=None, dataset_meta=None, *, use_hf=None):
            files = split_files(dataset_meta.dataset_name, dataset_syntax.subsets)
            return self.concat_datasets([self._load_dataset_path(str(path), dataset_meta) for path in files])

    for name in DATASET_NAMES:
        # ms/hf ids equal to the name only give swift a string to tag rows with; nothing is downloaded.
        register_dataset(DatasetMeta(ms_dataset_id=name, hf_dataset_id=name, dataset_name=name,
                                     subsets=list(SPLITS), loader=SplitFileLoader, tags=["cxr", "editgrpo"],
                                     help=f"converted CXR studies in ${DATA_DIR_ENV}/{name.removesuffix(SUFFIX)}/"),
                         exist_ok=True)
    return list(DATASET_NAMES)
