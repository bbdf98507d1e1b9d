"""The scorer factory and EditGRPO's clinical reward (the sum of RadGraph-F1, CheXbert micro-F1-14, RaTEScore).

`build_scorers(metrics, backend)` is the one factory (ORMs, `editgrpo score`, evaluation):
nothing is loaded there, each scorer loads its model on first use (once per process).
"""
from __future__ import annotations

from typing import Sequence

from rewards.base import ScoreResult, Scorer, check_pairs, finite
from rewards.config import BACKENDS, CLINICAL_KEY, OUTPUT_KEYS, REWARD_METRICS, RewardConfig
from rewards.paths import ModelPaths, preflight
from rewards.ratescore import RaTEScorer


def resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def build_scorers(
    metrics: Sequence[str] = REWARD_METRICS,
    backend: str = "real",
    paths: ModelPaths | None = None,
    device: str | None = None,
    batch_size: int = 32,
    dtype: str = "float32",
    cache_size: int = 4096,
) -> dict[str, Scorer]:
    """metric name -> Scorer (keys "chexbert", "radgraph", "ratescore"); `real` runs the preflight first.

    Nothing is loaded here: each scorer loads its model on first use (once per process).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    unknown = [m for m in metrics if m not in OUTPUT_KEYS]
    if unknown:
        raise ValueError(f"unknown reward metrics {unknown}; expected some of {tuple(OUTPUT_KEYS)}")
    if backend == "rules":
        from rewards.rules import LexiconGraphScorer, LexiconRaTEScorer, RuleCheXpertScorer

        factories = {
            "chexbert": lambda: RuleCheXpertScorer(cache_size=cache_size),
            "radgraph": lambda: LexiconGraphScorer(cache_size=cache_size),
            "ratescore": lambda: LexiconRaTEScorer(cache_size=cache_size),
        }
        return {m: factories[m]() for m in metrics}

    import torch

    paths = preflight(metrics, paths or ModelPaths.from_env())
    device = resolve_device(device)
    torch_dtype = getattr(torch, dtype)
    scorers: dict[str, Scorer] = {}
    for metric in metrics:
        if metric == "chexbert":
            from rewards.chexbert import CheXbertScorer

            scorers[metric] = CheXbertScorer(paths.chexbert_ckpt, paths.bert_dir, device, torch_dtype, batch_size, cache_size)
        elif metric == "radgraph":
            from rewards.radgraph import RadGraphScorer

            scorers[metric] = RadGraphScorer(paths.radgraph_dir, paths.resolve_radgraph_encoder(), device, torch_dtype,
                                             batch_size, cache_size)
        else:
            from rewards.ratescore import RATE_EMBED_MAX_LENGTH

            options = {"ner_dir": str(paths.rate_ner_dir), "embedder_dir": str(paths.biolord_dir), "device": device,
                       "dtype": dtype, "batch_size": batch_size, "pooling": "cls", "embed_max_length": RATE_EMBED_MAX_LENGTH,
                       "ner_unit": "sentence"}
            scorers[metric] = RaTEScorer("rate", options, cache_size=cache_size)
    return scorers


def build_from_config(config: RewardConfig, metrics: Sequence[str] = REWARD_METRICS) -> dict[str, Scorer]:
    paths = ModelPaths.from_env(config.expanded_models_dir) if config.backend == "real" else None
    return build_scorers(metrics, config.backend, paths=paths, device=config.device, batch_size=config.batch_size,
                         dtype=config.dtype, cache_size=config.cache_size)


class ClinicalScorer(Scorer):
    """EditGRPO's reward: the unweighted sum of the parts' headline values (range 0-3); components = each part."""

    name = CLINICAL_KEY

    def __init__(self, parts: dict[str, Scorer]):
        self.parts = parts

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> ScoreResult:
        check_pairs(hyps, refs)
        components = {scorer.name: [finite(v) for v in scorer.score(hyps, refs).values] for scorer in self.parts.values()}
        values = [finite(sum(column)) for column in zip(*components.values())] if components else [0.0] * len(hyps)
        return ScoreResult(values=values, components=components)
