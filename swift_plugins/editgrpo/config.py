"""EditGRPO run configuration, read from `EDITGRPO_*` environment variables.

swift's argparse cannot take plugin flags (the plugin is imported after parsing), so options
travel as environment variables or `--model_kwargs '{"EDITGRPO_X": ...}'` (swift exports
model_kwargs keys to `os.environ`). The trainer validates the whole config before the first
step, so a bad value stops the run with one message naming every problem, and records the
resolved config as `editgrpo_config.json` in the run's output directory.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

from swift_plugins.editgrpo.algorithm.advantage import ADVANTAGE_ESTIMATORS
from swift_plugins.editgrpo.algorithm.edits import FP_SCOPES, EditOptions
from swift_plugins.editgrpo.algorithm.matching import MATCH_MODES
from rewards.entities.rate_ner import DTYPES
from swift_plugins.editgrpo.algorithm.selection import PLACEMENTS, SelectionOptions

CONFIG_FILENAME = "editgrpo_config.json"

ANALYZERS = ("rate", "lexicon")  # the default first
ADVANTAGES = tuple(ADVANTAGE_ESTIMATORS)
REWARD_BACKENDS = ("real", "rules")


class EditGRPOConfigError(ValueError):
    """Raised once with every invalid EDITGRPO_* setting listed."""


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on|off")


@dataclass(frozen=True)
class EditGRPOConfig:
    """Defaults follow the reference code (algorithm §1, §3-§5); tests switch to the offline backends."""

    edits: bool = True  # EDITGRPO_EDITS on|off; off = plain Dr.GRPO
    edit_fraction: float = 0.5  # k = max(1, floor(G * fraction)) edited rollouts per group
    placement: str = "overwrite"  # edited copy of a source overwrites another rollout, or edits it in place
    ops_per_rollout: int = 1  # successful edit operations per edited rollout
    tau: float = 0.6  # similarity threshold of the FP/FN matching and FP replacement
    match: str = "affinity"  # "affinity" (reference code) or "paper"
    fp_scope: str = "trigger"  # FP replacement scored on the triggering entity or all FP entities of the sentence
    analyzer: str = "rate"  # entity analyzer backend: RaTE-NER + BioLORD, or the offline lexicon
    seed: int = 0  # the single seed of every edit decision
    advantage: str = "mean"  # "mean" = R - group mean (Dr.GRPO), "std" = normalised ablation
    reward_backend: str = "real"  # clinical reward scorers: real models or offline rules
    models_dir: str | None = None  # EDITGRPO_MODELS_DIR; sub-dirs per model (rewards/paths.py)
    device: str | None = None  # analyzer/scorer device; None = auto
    batch_size: int = 32  # analyzer batch size
    dtype: str = "float32"  # analyzer dtype; EDITGRPO_REWARD_DTYPE, which the reward scorers read too

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, uses_clinical_rewards: bool | None = None
    ) -> "EditGRPOConfig":
        """Parse and validate; raises one EditGRPOConfigError naming every bad variable.

        With `uses_clinical_rewards` given (the trainer knows it), missing model files are
        checked too (`model_problems`).
        """
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        problems: list[str] = []
        for name, (variable, parse) in ENV_VARIABLES.items():
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw.strip())
            except ValueError as error:
                problems.append(f"{variable}={raw!r}: {error}")
        config = cls(**values)
        problems.extend(config.problems())
        if uses_clinical_rewards is not None:
            problems.extend(config.model_problems(uses_clinical_rewards))
        if problems:
            raise EditGRPOConfigError("invalid EditGRPO configuration: " + "; ".join(problems))
        return config

    def problems(self) -> list[str]:
        """Every semantic problem of this config (empty when valid)."""
        found: list[str] = []
        if not 0.0 <= self.tau <= 1.0:
            found.append(f"EDITGRPO_TAU={self.tau}: must be in [0, 1]")
        if not 0.0 < self.edit_fraction <= 1.0:
            found.append(f"EDITGRPO_EDIT_FRACTION={self.edit_fraction}: must be in (0, 1] (EDITGRPO_EDITS=off turns edits off)")
        if self.ops_per_rollout < 1:
            found.append(f"EDITGRPO_OPS={self.ops_per_rollout}: must be >= 1")
        if self.batch_size < 1:
            found.append(f"EDITGRPO_BATCH_SIZE={self.batch_size}: must be >= 1")
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                found.append(f"{ENV_VARIABLES[name][0]}={value!r}: unknown, expected one of {'|'.join(choices)}")
        if self.models_dir is not None and not Path(self.models_dir).is_dir():
            found.append(f"EDITGRPO_MODELS_DIR={self.models_dir!r}: directory does not exist")
        return found

    def model_problems(self, uses_clinical_rewards: bool) -> list[str]:
        """Missing model files: the RaTE analyzer's (edits on, analyzer=rate) and the clinical
        reward's (real backend, when the run uses the editgrpo_* reward functions)."""
        from rewards import REWARD_METRICS
        from rewards.paths import ModelPaths, requirements

        needed: list[tuple[str, tuple[str, ...]]] = []
        if self.edits and self.analyzer == "rate":
            needed.append(("EDITGRPO_ANALYZER=rate (or EDITGRPO_ANALYZER=lexicon offline)", ("ratescore",)))
        if uses_clinical_rewards and self.reward_backend == "real":
            needed.append(("EDITGRPO_REWARD_BACKEND=real (or =rules offline)", REWARD_METRICS))
        paths = ModelPaths.from_env(self.models_dir)
        found: list[str] = []
        for setting, metrics in needed:
            for requirement, problem in requirements(metrics, paths):
                message = f"{setting} needs {requirement.what}: {problem} (set {requirement.env} or EDITGRPO_MODELS_DIR)"
                if problem and message not in found:
                    found.append(message)
        return found

    @property
    def analyzer_options(self) -> dict[str, object]:
        """Keyword options for `entities.build_analyzer(self.analyzer, **options)`."""
        if self.analyzer == "lexicon":
            return {}
        from rewards.paths import ModelPaths

        paths = ModelPaths.from_env(self.models_dir)
        options: dict[str, object] = {"ner_dir": str(paths.rate_ner_dir), "embedder_dir": str(paths.biolord_dir),
                                      "batch_size": self.batch_size, "dtype": self.dtype}
        if self.device:
            options["device"] = self.device
        return options

    @property
    def selection_options(self) -> SelectionOptions:
        return SelectionOptions(self.edit_fraction, self.placement, self.seed)

    @property
    def edit_options(self) -> EditOptions:
        return EditOptions(ops_per_rollout=self.ops_per_rollout, tau=self.tau, match=self.match, fp_scope=self.fp_scope,
                           seed=self.seed)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def save(self, output_dir: str | os.PathLike, extra: Mapping[str, object] | None = None) -> Path:
        """Write `editgrpo_config.json` (the resolved config plus `extra`, e.g. model paths)."""
        path = Path(output_dir) / CONFIG_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.to_dict(), **(extra or {})}, indent=2, sort_keys=True) + "\n")
        return path


# field -> (environment variable, parser)
ENV_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "edits": ("EDITGRPO_EDITS", _parse_bool),
    "edit_fraction": ("EDITGRPO_EDIT_FRACTION", float),
    "placement": ("EDITGRPO_PLACEMENT", str.lower),
    "ops_per_rollout": ("EDITGRPO_OPS", int),
    "tau": ("EDITGRPO_TAU", float),
    "match": ("EDITGRPO_MATCH", str.lower),
    "fp_scope": ("EDITGRPO_FP_SCOPE", str.lower),
    "analyzer": ("EDITGRPO_ANALYZER", str.lower),
    "seed": ("EDITGRPO_SEED", int),
    "advantage": ("EDITGRPO_ADVANTAGE", str.lower),
    "reward_backend": ("EDITGRPO_REWARD_BACKEND", str.lower),
    "models_dir": ("EDITGRPO_MODELS_DIR", str),
    "device": ("EDITGRPO_DEVICE", str),
    "batch_size": ("EDITGRPO_BATCH_SIZE", int),
    "dtype": ("EDITGRPO_REWARD_DTYPE", str.lower),
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "placement": PLACEMENTS,
    "match": MATCH_MODES,
    "fp_scope": FP_SCOPES,
    "analyzer": ANALYZERS,
    "advantage": ADVANTAGES,
    "reward_backend": REWARD_BACKENDS,
    "dtype": DTYPES,
}
