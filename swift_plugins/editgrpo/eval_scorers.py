"""Builds the evaluation's metric runners from the `rewards/` scorers (composition root side).

One scorer instance per metric for the whole evaluation, so reference-side caches are shared
by every run. GREEN is optional: without a configured judge it is skipped with a note.
"""
from __future__ import annotations

from typing import Any, Sequence

from swift_plugins.editgrpo.evaluation import (
    BleuRunner,
    ChexbertRunner,
    GreenRunner,
    MeanRunner,
    MetricRunner,
    MODEL_METRICS,
    RougeRunner,
)

# rewards scorer `name` -> evaluation metric group
SCORER_GROUPS = {
    "chexbert_micro_f1_14": "chexbert",
    "radgraph_partial_f1": "radgraph",
    "ratescore": "ratescore",
}


def model_runners(scorers: Sequence[Any]) -> dict[str, MetricRunner]:
    """Runners for scorers built by rewards.build_scorers, keyed by metric group."""
    runners: dict[str, MetricRunner] = {}
    for scorer in scorers:
        group = SCORER_GROUPS.get(scorer.name)
        if group == "chexbert":
            runners[group] = ChexbertRunner(scorer)
        elif group is not None:
            runners[group] = MeanRunner(scorer, scorer.name)
    return runners


def build_runners(
    metrics: Sequence[str],
    backend: str,
    green_model: str | None = None,
    green_endpoint: str | None = None,
    green_endpoint_model: str | None = None,
    green_max_new_tokens: int | None = None,
) -> tuple[dict[str, MetricRunner], list[str], dict[str, Any]]:
    """(runners in `metrics` order, notes for the outputs, settings to record)."""
    notes: list[str] = []
    described: dict[str, Any] = {}
    built: dict[str, MetricRunner] = {}
    wanted_models = [name for name in metrics if name in MODEL_METRICS]
    if wanted_models:
        import rewards

        scorers = rewards.build_scorers(wanted_models, backend=backend)
        built.update(model_runners(scorers.values() if isinstance(scorers, dict) else scorers))
        missing = [name for name in wanted_models if name not in built]
        if missing:
            raise RuntimeError(f"rewards.build_scorers({wanted_models}) returned no scorer for {missing}")
    if "green" in metrics:
        from rewards.green import GreenConfig, build_green_scorer

        config = GreenConfig.from_env(
            model_dir=green_model,
            endpoint=green_endpoint,
            endpoint_model=green_endpoint_model,
            max_new_tokens=green_max_new_tokens,
        )
        described["green"] = config.describe()
        if config.configured:
            built["green"] = GreenRunner(build_green_scorer(config))
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
