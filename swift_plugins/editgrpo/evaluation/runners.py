"""Metric runners: one per `--metrics` group, each scoring every run's pairs with one scorer.

One scorer instance per metric serves the whole evaluation, so reference-side caches are shared by
every run. `build_runners` makes them from the `rewards/` scorers; GREEN is optional: without a
configured judge it is skipped with a note.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rewards.config import RewardConfig
from swift_plugins.editgrpo.evaluation.columns import METRIC_GROUPS, MODEL_METRICS
from swift_plugins.editgrpo.evaluation.lexical import corpus_bleu, rouge_l


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


@dataclass
class MetricOutput:
    corpus: dict[str, float]  # column key -> corpus value
    per_sample: dict[str, list[float]] = field(default_factory=dict)  # per_sample.jsonl keys -> values
    counts: dict[str, int] = field(default_factory=dict)  # e.g. green_unparsed


Progress = Callable[[int], None]  # told how many more pairs are done
PROGRESS_CHUNK = 256  # pairs per scorer call: large enough for batching, small enough for a live progress bar


def _chunks(n: int) -> list[slice]:
    return [slice(start, min(start + PROGRESS_CHUNK, n)) for start in range(0, n, PROGRESS_CHUNK)]


class MetricRunner(ABC):
    """Scores one metric group; one instance serves every run, so reference-side work is shared."""

    @abstractmethod
    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput: ...


class ChexbertRunner(MetricRunner):
    """The four CheXbert columns: corpus micro/macro-F1 over 14 and 5 labels, uncertain -> positive.

    Works on any `rewards.chexbert.LabelScorer` (CheXbert or the rules proxy): labels come from its
    annotations, whose reference side is cached, so later runs reuse the references' labels.
    """

    def __init__(self, scorer: Any):
        self.scorer = scorer

    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        from rewards.chexbert import corpus_f1

        hyp_labels: list[Any] = []
        ref_labels: list[Any] = []
        for part in _chunks(len(hyps)):
            hyp_part, ref_part = self.scorer.annotations(hyps[part], refs[part])
            hyp_labels += hyp_part
            ref_labels += ref_part
            advance(len(hyp_part))
        per_pair = [self.scorer.compare(h, r)[self.scorer.headline] for h, r in zip(hyp_labels, ref_labels)]
        corpus = corpus_f1(np.stack([label.binary for label in hyp_labels]), np.stack([label.binary for label in ref_labels]))
        return MetricOutput(
            {key: float(corpus[key]) for key in METRIC_GROUPS["chexbert"]}, {"chexbert_micro_f1_14": per_pair}
        )


def _score_in_chunks(scorer: Any, hyps: list[str], refs: list[str], advance: Progress) -> tuple[list[float], dict[str, list[float]]]:
    values: list[float] = []
    components: dict[str, list[float]] = {}
    for part in _chunks(len(hyps)):
        result = scorer.score(hyps[part], refs[part])
        if len(result.values) != part.stop - part.start:
            raise RuntimeError(f"{scorer.name}: scorer returned {len(result.values)} values for {part.stop - part.start} pairs")
        values += [float(value) for value in result.values]
        for key, column in result.components.items():
            components.setdefault(key, []).extend(column)
        advance(len(result.values))
    return values, components


class MeanRunner(MetricRunner):
    """Metrics whose corpus value is the mean of the per-pair values (RadGraph partial F1, RaTEScore)."""

    def __init__(self, scorer: Any):
        self.scorer = scorer

    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        values, _ = _score_in_chunks(self.scorer, hyps, refs, advance)
        return MetricOutput({self.scorer.name: mean(values)}, {self.scorer.name: values})


class GreenRunner(MetricRunner):
    """GREEN mean; judge outputs that could not be parsed are counted (they score 0, as upstream)."""

    def __init__(self, scorer: Any):
        self.scorer = scorer

    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        values, components = _score_in_chunks(self.scorer, hyps, refs, advance)
        per_sample = {"green": values, **{f"green_{key}": column for key, column in components.items()}}
        return MetricOutput(
            {"green": mean(values)}, per_sample, {"green_unparsed": sum(1 for parsed in components["parsed"] if not parsed)}
        )


class BleuRunner(MetricRunner):
    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        output = MetricOutput({"bleu4": corpus_bleu(hyps, refs)})
        advance(len(hyps))
        return output


class RougeRunner(MetricRunner):
    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        values = [rouge_l(hyp, ref) for hyp, ref in zip(hyps, refs)]
        advance(len(hyps))
        return MetricOutput({"rouge_l": mean(values)}, {"rouge_l": values})


def model_runners(scorers: Mapping[str, Any]) -> dict[str, MetricRunner]:
    """Runners for the scorers rewards.build_scorers returns (keyed chexbert/radgraph/ratescore)."""
    return {
        metric: ChexbertRunner(scorer) if metric == "chexbert" else MeanRunner(scorer)
        for metric, scorer in scorers.items()
    }


def build_runners(
    metrics: Sequence[str], reward: RewardConfig, green_max_new_tokens: int | None = None, n_references: int = 0
) -> tuple[dict[str, MetricRunner], list[str], dict[str, Any]]:
    """(runners in `metrics` order, notes for the outputs, settings to record).

    Model scorers follow `reward` (backend, device, batch size, weights); their reference cache
    is sized to hold every distinct reference, so each is annotated once.
    """
    notes: list[str] = []
    described: dict[str, Any] = {}
    built: dict[str, MetricRunner] = {}
    wanted_models = [name for name in metrics if name in MODEL_METRICS]
    if wanted_models:
        import rewards

        sized = replace(reward, cache_size=max(reward.cache_size, n_references))
        built.update(model_runners(rewards.build_from_config(sized, wanted_models)))
        if reward.backend == "rules":
            from rewards.rules import PROXY_NOTE

            notes.append(PROXY_NOTE)
    if "green" in metrics:
        from rewards.green import GreenConfig, build_green_scorer

        green_config = GreenConfig.from_settings(reward, max_new_tokens=green_max_new_tokens)
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
