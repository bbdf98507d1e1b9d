"""Builds the evaluation's metric runners from the `rewards/` scorers (composition root side).

One scorer instance per metric for the whole evaluation, so reference-side caches are shared
by every run. GREEN is optional: without a configured judge it is skipped with a note.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from swift_plugins.editgrpo.evaluation import (
    MODEL_METRICS,
    BleuRunner,
    ChexbertRunner,
    GreenRunner,
    MeanRunner,
    MetricRunner,
    RougeRunner,
)


def model_runners(scorers: Mapping[str, Any]) -> dict[str, MetricRunner]:
    """Runners for the scorers rewards.build_scorers returns (keyed chexbert/radgraph/ratescore)."""
    return {
        metric: ChexbertRunner(scorer) if metric == "chexbert" else MeanRunner(scorer)
        for metric, scorer in scorers.items()
    }


def build_runners(
    metrics: Sequence[str],
    backend: str,
    green_model: str | None = None,
    green_endpoint: str | None = None,
    green_endpoint_model: str | None = None,
    green_max_new_tokens: int | None = None,
    n_references: int = 0,
) -> tuple[dict[str, MetricRunner], list[str], dict[str, Any]]:
    """(runners in `metrics` order, notes for the outputs, settings to record).

    Model scorers take device, batch size and weights from the EDITGRPO_* variables; their
    reference cache is sized to hold every distinct reference, so each is annotated once.
    """
    notes: list[str] = []
    described: dict[str, Any] = {}
    built: dict[str, MetricRunner] = {}
    wanted_models = [name for name in metrics if name in MODEL_METRICS]
    if wanted_models:
        import rewards

        from_env = rewards.RewardConfig.from_env()
        reward_config = replace(from_env, backend=backend, cache_size=max(from_env.cache_size, n_references))
        built.update(model_runners(rewards.build_from_config(reward_config, wanted_models)))
        if backend == "rules":
            from rewards.rules import PROXY_NOTE

            notes.append(PROXY_NOTE)
    if "green" in metrics:
        from rewards.green import GreenConfig, build_green_scorer

        green_config = GreenConfig.from_env(
            model_dir=green_model,
            endpoint=green_endpoint,
            endpoint_model=green_endpoint_model,
            max_new_tokens=green_max_new_tokens,
        )
        described["green"] = green_config.describe()
        if green_config.configured:
            built["green"] = GreenRunner(build_green_scorer(green_config))
        else:
            notes.append(
                "GREEN skipped: no judge configured (--green-model DIR / $EDITGRPO_GREEN_DIR, or "
                "--green-endpoint URL with --green-endpoint-model); Avg is over the other clinical metrics"
            )
    if "bleu4" in metrics:
        built["bleu4"] = BleuRunner()
    if "rouge_l" in metrics:
        built["rouge_l"] = RougeRunner()
    return {name: built[name] for name in metrics if name in built}, notes, described
