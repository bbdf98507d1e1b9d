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

Completions come as swift passes them: a string, an assistant message (`{"role": "assistant",
"content": ...}` or `{"content": ...}`), or a list of messages (the last assistant message's
content); content is a string or a list of typed parts, whose `{"type": "text", "text": ...}`
parts are the text (image/audio parts are skipped).
Anything else (numbers, bools, nan, nested junk) is not a report: it scores 0, never the score of
its `str()`, and each such type is logged once. A None solution is an empty reference.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Any, Sequence

from rewards import REWARD_METRICS, ClinicalScorer, RewardConfig, build_from_config
from rewards.base import Scorer, finite
from templates.families import strip_response_prefix

_lock = threading.Lock()
_scorers: dict[RewardConfig, dict[str, Scorer]] = {}


def shared_scorers(config: RewardConfig | None = None) -> dict[str, Scorer]:
    """The process-wide scorers for a configuration (built once, on first use)."""
    config = config or RewardConfig.from_env()
    with _lock:
        if config not in _scorers:
            _scorers[config] = build_from_config(config, REWARD_METRICS)
        return _scorers[config]


logger = logging.getLogger(__name__)
_logged_types: set[tuple[str, str]] = set()  # (column, type name) already warned about


def _content_text(content: Any) -> str | None:
    """A message's content as text: a string, or the text parts of a multimodal part list."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not all(isinstance(part, dict) and isinstance(part.get("type"), str) for part in content):
        return None
    texts = [part.get("text") for part in content if part.get("type") == "text"]
    return "".join(texts) if all(isinstance(t, str) for t in texts) else None


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def report_text(value: Any) -> str | None:
    """The report text of one swift completion (string, message, or message list); None when it is not text.

    Lone surrogates (no tokenizer decodes to one, but the Hugging Face tokenizers refuse them) become U+FFFD;
    a family's response prefix (Qwen3.5's empty thinking block) is not part of the report.
    """
    if isinstance(value, str):
        return _SURROGATE_RE.sub("\ufffd", strip_response_prefix(value))
    if isinstance(value, dict):  # a message: the assistant's (or role-less, as `{"content": ...}`)
        return report_text(_content_text(value.get("content"))) if value.get("role", "assistant") == "assistant" else None
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        replies = [m for m in value if m["role"] == "assistant"]
        return report_text(replies[-1]) if replies else None
    return None


def _log_not_text(name: str, column: str, values: Sequence[Any]) -> None:
    """One warning per column and type of non-text entry per process: a broken rollout pipeline is reported, not flooded."""
    with _lock:
        new = {(column, type(v).__name__) for v in values} - _logged_types
        _logged_types.update(new)
    if new:
        logger.warning("%s: %s entries of type %s are not report text; their rewards are 0 "
                       "(first: %.200r; later entries of these types are not logged)",
                       name, column, ", ".join(sorted(t for _, t in new)), values[0])


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
        if len(solution) != len(completions):
            raise ValueError(f"{type(self).__name__}: {len(completions)} completions but {len(solution)} solutions")
        hyps = [report_text(c) for c in completions]
        refs = ["" if s is None else report_text(s) for s in solution]
        for column, raw, texts in (("completion", completions, hyps), ("solution", solution, refs)):
            if None in texts:
                _log_not_text(type(self).__name__, column, [v for v, t in zip(raw, texts) if t is None])
        kept = [i for i, (h, r) in enumerate(zip(hyps, refs)) if h is not None and r is not None]
        scorer = self.scorer()
        result = scorer.score([hyps[i] for i in kept], [refs[i] for i in kept])
        if len(result.values) != len(kept):
            raise RuntimeError(f"{type(self).__name__}: {len(result.values)} rewards for {len(kept)} completions")

        def spread(column: Sequence[float]) -> list[float]:
            """Back to one value per completion: 0 where it (or its solution) was not text."""
            out = [0.0] * len(hyps)
            for i, v in zip(kept, column):
                out[i] = finite(v)
            return out

        # only the composite's parts: swift already logs a single metric under the ORM's class name
        self.last_components = {k: spread(v) for k, v in result.components.items()} if isinstance(scorer, ClinicalScorer) else {}
        return spread(result.values)


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


def register_orms() -> None:
    """Add the ORMs to swift's registry (`--reward_funcs editgrpo_clinical ...`)."""
    from swift.rewards import orms

    orms.update(ORMS)
