"""Shared fixtures: real IU-XRay report text and the tiny random Qwen2.5-VL checkpoint."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
IU_XRAY_DIR = REPO_ROOT.parent / "shared" / "data" / "iu_xray"


def load_iu_reports() -> list[dict[str, str]]:
    """All 3,851 IU-XRay report rows (uid, findings, impression, indication, ...)."""
    path = IU_XRAY_DIR / "indiana_reports.csv"
    if not path.exists():
        pytest.skip(f"IU-XRay reports not found at {path} (shared/data/iu_xray)")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def iu_reports() -> list[dict[str, str]]:
    return load_iu_reports()


@pytest.fixture(scope="session")
def iu_findings(iu_reports) -> list[str]:
    """Non-empty FINDINGS sections of IU-XRay, in file order."""
    return [row["findings"] for row in iu_reports if row["findings"].strip()]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint built once per session by `editgrpo tiny-model`'s builder."""
    from swift_plugins.editgrpo.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny_qwen2_5_vl")
    build_tiny_model(out)
    return out
