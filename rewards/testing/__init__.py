"""Random-weight checkpoints of the exact scorer and analyzer architectures, in the layouts users download.

No weights can be downloaded here, so the tests, the parity goldens and the benchmarks build
them locally (one place for all builders): `scorer_models` (CheXbert, RadGraph-XL) and
`rate_models` (RaTE-NER DeBERTa, BioLORD MPNet). Only the predictions are meaningless; the real
loading, batching and decoding code runs on them.
"""
from rewards.testing.rate_models import RATE_LABELS, build_rate_models
from rewards.testing.scorer_models import build_chexbert, build_radgraph

__all__ = ["RATE_LABELS", "build_chexbert", "build_radgraph", "build_rate_models"]
