"""Random-weight checkpoints of the exact scorer and analyzer architectures, in the layouts users download.

No weights can be downloaded here, so the tests, the parity goldens and the benchmarks build
them locally (one place for all builders): `scorer_models` (CheXbert, RadGraph-XL) and
`rate_models` (RaTE-NER DeBERTa, BioLORD MPNet). Only the predictions are meaningless; the real
loading, batching and decoding code runs on them.
"""
from pathlib import Path
from typing import Sequence

from rewards.testing.rate_models import RATE_LABELS, build_rate_models
from rewards.testing.scorer_models import build_chexbert, build_radgraph

__all__ = ["RATE_LABELS", "build_all_missing", "build_chexbert", "build_radgraph", "build_rate_models"]


def build_all_missing(models_dir: Path, corpus: Sequence[str], size: str) -> None:
    """CheXbert, RadGraph-XL and the RaTE models under `models_dir`, each unless already there (benchmarks)."""
    if not (models_dir / "chexbert" / "chexbert.pth").is_file():
        build_chexbert(models_dir, list(corpus), size)
    if not (models_dir / "radgraph-xl" / "weights.th").is_file():
        build_radgraph(models_dir, list(corpus), size)
    if not (models_dir / "BioLORD-2023-C" / "config.json").is_file():
        build_rate_models(models_dir, list(corpus), size=size)
