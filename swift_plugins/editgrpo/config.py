"""EditGRPO run configuration, read from `EDITGRPO_*` environment variables.

swift's argparse cannot take plugin flags (the plugin is imported after parsing), so options
travel as environment variables or `--model_kwargs '{"EDITGRPO_TAU": 0.7}'` (swift exports
model_kwargs keys to `os.environ`). The trainer validates the whole config before the first
step, so a bad value (or an `EDITGRPO_*` name nothing reads, e.g. a typo) stops the run with one
message naming every problem, and records the resolved config as `editgrpo_config.json` in the
run's output directory.
"""
from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from rewards.config import REWARD_METRICS, REWARD_SETTINGS, RewardConfig, Setting, SettingsError, check_choices, parse_bool, parse_settings
from rewards.entities.backends import ANALYZER_BACKENDS
from swift_plugins.editgrpo.algorithm.advantage import ADVANTAGE_ESTIMATORS
from swift_plugins.editgrpo.algorithm.edits import FP_SCOPES, EditOptions
from swift_plugins.editgrpo.algorithm.matching import MATCH_MODES
from swift_plugins.editgrpo.algorithm.selection import PLACEMENTS, SelectionOptions
from swift_plugins.editgrpo.edit_ratio import EDIT_RATIOS, LUFFY_DEFAULT_GAMMA

CONFIG_FILENAME = "editgrpo_config.json"


class EditGRPOConfigError(SettingsError):
    """Raised once with every invalid EDITGRPO_* setting listed."""


@dataclass(frozen=True)
class EditGRPOConfig:
    """Defaults follow the reference code (docs/algorithm.md §9); tests switch to the offline backends.

    `reward` holds the scorer settings (backend, device, dtype, batch size, models dir), which
    the trainer's entity analyzer shares with the reward functions.
    """

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
    edit_ratio: str = "recompute"  # edited rows' importance ratio: recomputed old log-probs, or LUFFY's p/(p+gamma)
    luffy_gamma: float = LUFFY_DEFAULT_GAMMA  # gamma of the shaped ratio (edit_ratio=luffy)
    reward: RewardConfig = field(default_factory=RewardConfig)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, uses_clinical_rewards: bool | None = None, **reward_overrides
    ) -> "EditGRPOConfig":
        """Parse and validate; raises one EditGRPOConfigError naming every bad variable.

        `reward_overrides` are CLI flags for the scorer settings (None = not given). With
        `uses_clinical_rewards` given (the trainer knows it), missing model files are checked too.
        """
        environ = os.environ if environ is None else environ
        values, problems = parse_settings(SETTINGS, environ)
        reward, reward_problems = RewardConfig.parse(environ, **reward_overrides)
        config = cls(**values, reward=reward)
        problems += reward_problems + config.problems() + unknown_variables(environ)
        if uses_clinical_rewards is not None:
            problems.extend(config.model_problems(uses_clinical_rewards))
        if problems:
            raise EditGRPOConfigError("invalid EditGRPO configuration: " + "; ".join(problems))
        return config

    def problems(self) -> list[str]:
        """Every semantic problem of the EditGRPO fields and the models dir (`reward` checks its own values)."""
        found: list[str] = []
        if not 0.0 <= self.tau <= 1.0:
            found.append(f"EDITGRPO_TAU={self.tau}: must be in [0, 1]")
        if not 0.0 < self.edit_fraction <= 1.0:
            found.append(f"EDITGRPO_EDIT_FRACTION={self.edit_fraction}: must be in (0, 1] (EDITGRPO_EDITS=off turns edits off)")
        if self.ops_per_rollout < 1:
            found.append(f"EDITGRPO_OPS={self.ops_per_rollout}: must be >= 1")
        if not (math.isfinite(self.luffy_gamma) and self.luffy_gamma > 0.0):
            found.append(f"EDITGRPO_LUFFY_GAMMA={self.luffy_gamma}: must be a finite number > 0")
        models_dir = self.reward.expanded_models_dir
        if models_dir is not None and not Path(models_dir).is_dir():
            found.append(f"EDITGRPO_MODELS_DIR={self.reward.models_dir!r}: directory does not exist")
        return found + check_choices(self, SETTINGS)

    def model_problems(self, uses_clinical_rewards: bool) -> list[str]:
        """Missing model files: the RaTE analyzer's (edits on, analyzer=rate) and the clinical
        reward's (real backend, when the run uses the editgrpo_* reward functions)."""
        from rewards.paths import requirements

        needed: list[tuple[str, tuple[str, ...]]] = []
        if self.edits and self.analyzer == "rate":
            needed.append(("EDITGRPO_ANALYZER=rate (or EDITGRPO_ANALYZER=lexicon offline)", ("ratescore",)))
        if uses_clinical_rewards and self.reward.backend == "real":
            needed.append(("EDITGRPO_REWARD_BACKEND=real (or =rules offline)", REWARD_METRICS))
        paths = self.model_paths
        found: list[str] = []
        for setting, metrics in needed:
            for requirement, problem in requirements(metrics, paths):
                message = f"{setting} needs {requirement.what}: {problem} (set {requirement.env} or EDITGRPO_MODELS_DIR)"
                if problem and message not in found:
                    found.append(message)
        return found

    @property
    def model_paths(self):
        from rewards.paths import ModelPaths

        return ModelPaths.from_env(self.reward.expanded_models_dir)

    @property
    def analyzer_options(self) -> dict[str, object]:
        """Keyword options for `rewards.entities.backends.build_analyzer(self.analyzer, **options)`."""
        if self.analyzer == "lexicon":
            return {}
        paths = self.model_paths
        options: dict[str, object] = {"ner_dir": str(paths.rate_ner_dir), "embedder_dir": str(paths.biolord_dir),
                                      "batch_size": self.reward.batch_size, "dtype": self.reward.dtype}
        if self.reward.device != "auto":
            options["device"] = self.reward.device
        return options

    @property
    def selection_options(self) -> SelectionOptions:
        return SelectionOptions(self.edit_fraction, self.placement, self.seed)

    @property
    def edit_options(self) -> EditOptions:
        return EditOptions(ops_per_rollout=self.ops_per_rollout, tau=self.tau, match=self.match, fp_scope=self.fp_scope,
                           seed=self.seed)

    def to_dict(self) -> dict[str, object]:
        return {**{name: getattr(self, name) for name in SETTINGS}, "reward": self.reward.as_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "EditGRPOConfig":
        """The inverse of `to_dict` (a saved `editgrpo_config.json`, extra keys ignored)."""
        reward = RewardConfig(**{k: v for k, v in dict(data.get("reward") or {}).items() if k in REWARD_SETTINGS})
        return cls(**{k: v for k, v in data.items() if k in SETTINGS}, reward=reward)

    def save(self, output_dir: str | os.PathLike, extra: Mapping[str, object] | None = None) -> Path:
        """Write `editgrpo_config.json` (the resolved config plus `extra`, e.g. model paths)."""
        path = Path(output_dir) / CONFIG_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.to_dict(), **(extra or {})}, indent=2, sort_keys=True) + "\n")
        return path


# field -> its environment variable (the reward's are in rewards.config.REWARD_SETTINGS)
SETTINGS: dict[str, Setting] = {
    "edits": Setting("EDITGRPO_EDITS", parse_bool),
    "edit_fraction": Setting("EDITGRPO_EDIT_FRACTION", float),
    "placement": Setting("EDITGRPO_PLACEMENT", str.lower, PLACEMENTS),
    "ops_per_rollout": Setting("EDITGRPO_OPS", int),
    "tau": Setting("EDITGRPO_TAU", float),
    "match": Setting("EDITGRPO_MATCH", str.lower, MATCH_MODES),
    "fp_scope": Setting("EDITGRPO_FP_SCOPE", str.lower, FP_SCOPES),
    "analyzer": Setting("EDITGRPO_ANALYZER", str.lower, ANALYZER_BACKENDS),
    "seed": Setting("EDITGRPO_SEED", int),
    "advantage": Setting("EDITGRPO_ADVANTAGE", str.lower, tuple(ADVANTAGE_ESTIMATORS)),
    "edit_ratio": Setting("EDITGRPO_EDIT_RATIO", str.lower, EDIT_RATIOS),
    "luffy_gamma": Setting("EDITGRPO_LUFFY_GAMMA", float),
}
# every variable an EditGRPO run reads, field path -> variable
ENV_VARIABLES: dict[str, str] = {**{name: s.variable for name, s in SETTINGS.items()},
                                 **{f"reward.{name}": s.variable for name, s in REWARD_SETTINGS.items()}}
# EDITGRPO_* variables read elsewhere: model locations (rewards.paths; EDITGRPO_GREEN_DIR is a
# reward setting), data and demo defaults (datasets_registry.registration, commands.demo),
# run/common.sh's plugin path, the property tests' example count
OTHER_VARIABLES: tuple[str, ...] = (
    "EDITGRPO_CHEXBERT_CKPT", "EDITGRPO_BERT_DIR", "EDITGRPO_RADGRAPH_DIR", "EDITGRPO_RADGRAPH_ENCODER",
    "EDITGRPO_RATE_NER_DIR", "EDITGRPO_BIOLORD_DIR", "EDITGRPO_DATA_DIR", "EDITGRPO_DEMO_PROFILE",
    "EDITGRPO_PLUGIN", "EDITGRPO_HYPOTHESIS_EXAMPLES",
)
# every EDITGRPO_* name the project reads (tests/test_config.py checks it against the sources)
KNOWN_VARIABLES: frozenset[str] = frozenset(ENV_VARIABLES.values()) | frozenset(OTHER_VARIABLES)
_PREFIX = "EDITGRPO_"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A problem per EDITGRPO_* name nothing reads (a typo would otherwise leave its default in force),
    with the closest known name (compared without the common prefix, which every name shares)."""
    known = sorted(name.removeprefix(_PREFIX) for name in KNOWN_VARIABLES)
    found = []
    for name in sorted(environ):
        if name.startswith(_PREFIX) and name not in KNOWN_VARIABLES:
            close = difflib.get_close_matches(name.removeprefix(_PREFIX), known, n=1)
            found.append(f"{name}: unknown variable" + (f"; did you mean {_PREFIX}{close[0]}?" if close else ""))
    return found
