"""Clinical report scorers (CheXbert, RadGraph, RaTEScore, GREEN, offline rules) and the ORMs.

config (names, the validated settings), clinical (the scorer factory and the summed reward),
paths (model locations and the preflight), base (the scorer protocol), batching (batches,
caches), entities (RaTE entity types, affinities, analyzers), orms (swift's reward functions),
testing (random-weight checkpoints). Importing this package is cheap: models load lazily.
"""
from __future__ import annotations

from rewards.base import ScoreResult, Scorer, check_pairs, finite
from rewards.clinical import ClinicalScorer, build_from_config, build_scorers, resolve_device
from rewards.config import BACKENDS, CLINICAL_KEY, METRICS, OUTPUT_KEYS, REWARD_METRICS, RewardConfig, SettingsError
from rewards.paths import MissingWeightsError, ModelPaths, preflight

__all__ = [
    "BACKENDS", "CLINICAL_KEY", "ClinicalScorer", "METRICS", "MissingWeightsError", "ModelPaths", "OUTPUT_KEYS",
    "REWARD_METRICS", "RewardConfig", "ScoreResult", "Scorer", "SettingsError", "build_from_config", "build_scorers",
    "check_pairs", "finite", "preflight", "resolve_device",
]
