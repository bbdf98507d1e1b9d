"""Shared fixtures: real IU-XRay report text and the tiny random Qwen2.5-VL checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from datasets_registry.iu_xray import read_report_rows

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def iu_reports() -> list[dict[str, str]]:
    """All 3,851 bundled IU-XRay report rows (uid, findings, impression, indication, ...)."""
    return read_report_rows()


@pytest.fixture(scope="session")
def iu_findings(iu_reports) -> list[str]:
    """Non-empty FINDINGS sections of IU-XRay, in file order."""
    return [row["findings"] for row in iu_reports if row["findings"].strip()]


@pytest.fixture(scope="session")
def rate_dirs(tmp_path_factory, iu_findings) -> tuple[Path, Path]:
    """Tiny random RaTE-NER (DeBERTa-v3) and BioLORD (MPNet) dirs, tokenizers trained on IU-XRay findings."""
    from rewards.testing import build_rate_models

    return build_rate_models(tmp_path_factory.mktemp("rate_models"), iu_findings[:200], size="tiny", seed=0)


@pytest.fixture(scope="session")
def scorer_models_dir(tmp_path_factory, iu_findings) -> Path:
    """Random-weight CheXbert, RadGraph-XL, RaTE-NER and BioLORD dirs in the layout users download, so the
    real loading and inference code runs (`EDITGRPO_MODELS_DIR` layout)."""
    from rewards.testing import build_chexbert, build_radgraph, build_rate_models

    out = tmp_path_factory.mktemp("scorer_models")
    corpus = iu_findings[:300]
    build_chexbert(out, corpus)
    build_radgraph(out, corpus)
    build_rate_models(out, corpus, size="tiny")
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint built once per session by `editgrpo tiny-model`'s builder."""
    from swift_plugins.editgrpo.tiny.model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny_qwen2_5_vl")
    build_tiny_model(out)
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core box: thread synchronisation costs more than the maths.

    Opt in per module: `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
