"""ms-swift ORMs for EditGRPO's clinical reward (`--reward_funcs editgrpo_clinical`, or the three parts).

swift calls `orm(completions, **batch_columns)`; the gold report is the dataset's `solution`
column. Configuration comes from EDITGRPO_* variables (`RewardConfig.from_env`): backend
(real|rules), models dir and per-model paths, device, batch size. The scorers are built on
the first call and shared by every ORM of the process, so configuring the three parts
separately (swift then logs `rewards/<Name>/mean` for each and sums them) costs no extra model
passes: rollouts annotated by one ORM are found in the cache by the next.

`editgrpo_clinical` returns the sum and keeps the parts of its last call in `last_components`
(`{"radgraph_partial_f1": [...], ...}`); the trainer logs them as `rewards/<part>/mean` (the
single-metric ORMs leave it empty: swift logs them under their class names).
Every value is finite, one per completion, in order.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

from rewards import CLINICAL_KEY, OUTPUT_KEYS, REWARD_METRICS, ClinicalScorer, RewardConfig, build_from_config
from rewards.base import Scorer, finite

_lock = threading.Lock()
_scorers: dict[RewardConfig, dict[str, Scorer]] = {}


def shared_scorers(config: RewardConfig | None = None) -> dict[str, Scorer]:
    """The process-wide scorers for a configuration (built once, on first use)."""
    config = config or RewardConfig.from_env()
    with _lock:
        if config not in _scorers:
            _scorers[config] = build_from_config(config, REWARD_METRICS)
        return _scorers[config]


def _texts(values: Sequence[Any]) -> list[str]:
    """Completions/solutions as strings; a None entry is an empty report."""
    return ["" if v is None else v if isinstance(v, str) else str(v) for v in values]


try:  # swift's base classes when swift is importable; the ORMs work as plain callables without it
    from swift.rewards import ORM as _ORMBase
except ImportError:  # pragma: no cover - swift is a hard dependency of the plugin, not of the scorers
    class _ORMBase:  # type: ignore[no-redef]
        def __init__(self, args=None, **kwargs):
            self.args = args


class _ScorerORM(_ORMBase):
    metrics: tuple[str, ...]

    def __init__(self, args=None, **kwargs):
        super().__init__(args, **kwargs)
        self.config = RewardConfig.from_env()
        self.last_components: dict[str, list[float]] = {}

    def scorer(self) -> Scorer:
        scorers = shared_scorers(self.config)
        parts = {m: scorers[m] for m in self.metrics}
        return ClinicalScorer(parts) if len(parts) > 1 else next(iter(parts.values()))

    def __call__(self, completions: Sequence[Any], solution: Sequence[Any] | None = None, **kwargs) -> list[float]:
        if solution is None:  # every reward would be the no-entity constant: nothing to learn, so stop
            raise ValueError(f"{type(self).__name__} needs the gold report in the data set's `solution` column "
                             "(editgrpo convert writes it; swift passes extra columns to reward functions)")
        hyps, refs = _texts(completions), _texts(solution)
        scorer = self.scorer()
        result = scorer.score(hyps, refs)
        # only the composite's parts: swift already logs a single metric under the ORM's class name
        self.last_components = {k: list(v) for k, v in result.components.items()} if isinstance(scorer, ClinicalScorer) else {}
        values = [finite(v) for v in result.values]
        if len(values) != len(hyps):
            raise RuntimeError(f"{type(self).__name__}: {len(values)} rewards for {len(hyps)} completions")
        return values


class EditGRPORadGraph(_ScorerORM):
    """RadGraph-XL partial F1 (rules backend: lexicon-entity F1 proxy)."""

    metrics = ("radgraph",)


class EditGRPOCheXbert(_ScorerORM):
    """CheXbert micro-F1 over the 14 labels of this pair, uncertain -> positive (rules: keyword labeler proxy)."""

    metrics = ("chexbert",)


class EditGRPORaTEScore(_ScorerORM):
    """RaTEScore (rules backend: the same formula over lexicon entities)."""

    metrics = ("ratescore",)


class EditGRPOClinical(_ScorerORM):
    """RadGraph-F1(partial) + CheXbert micro-F1-14 + RaTEScore, unweighted (0-3), as the paper."""

    metrics = REWARD_METRICS


ORMS: dict[str, type] = {
    "editgrpo_radgraph": EditGRPORadGraph,
    "editgrpo_chexbert": EditGRPOCheXbert,
    "editgrpo_ratescore": EditGRPORaTEScore,
    "editgrpo_clinical": EditGRPOClinical,
}
COMPONENT_KEYS: tuple[str, ...] = tuple(OUTPUT_KEYS[m] for m in REWARD_METRICS) + (CLINICAL_KEY,)


def register_orms() -> None:
    """Add the ORMs to swift's registry (`--reward_funcs editgrpo_clinical ...`)."""
    from swift.rewards import orms

    orms.update(ORMS)
