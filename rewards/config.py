"""The scorers' names and settings: the one validated parser of the EDITGRPO_* variables they read.

swift's ORMs have no channel but the environment, so scorer settings travel as EDITGRPO_*
variables; the plugin's `EditGRPOConfig` composes `RewardConfig` (parsed once per entry point,
with every problem in one message), and CLI flags arrive as `overrides`, never via os.environ.
`Setting`/`parse_settings` are the parsing idiom every settings object of the project uses.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Mapping

BACKENDS: tuple[str, ...] = ("real", "rules")
REWARD_METRICS: tuple[str, ...] = ("radgraph", "chexbert", "ratescore")  # EditGRPO's reward, in the paper's order
OUTPUT_KEYS: dict[str, str] = {"chexbert": "chexbert_micro_f1_14", "radgraph": "radgraph_partial_f1", "ratescore": "ratescore"}
METRICS: tuple[str, ...] = (*REWARD_METRICS, "green")  # every scorer with model files (rewards.paths)
CLINICAL_KEY = "clinical"
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")  # scorer/analyzer model dtypes
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class SettingsError(ValueError):
    """Raised once with every invalid setting listed."""


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on|off")


def parse_device(value: str) -> str:
    if not _DEVICE.fullmatch(value):
        raise ValueError("expected auto, cpu, mps, cuda or cuda:N")
    return value


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its parser, and (for names) the allowed values."""

    variable: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None


def parse_settings(settings: Mapping[str, Setting], environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(field -> parsed value for every variable that is set, problems); unset or blank variables keep defaults."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, setting in settings.items():
        raw = environ.get(setting.variable)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = setting.parse(raw.strip())
        except ValueError as error:
            problems.append(f"{setting.variable}={raw!r}: {error}")
            continue
        if setting.choices is not None and value not in setting.choices:
            problems.append(f"{setting.variable}={value!r}: unknown, expected one of {'|'.join(setting.choices)}")
            continue
        values[name] = value
    return values, problems


def check_choices(owner: Any, settings: Mapping[str, Setting]) -> list[str]:
    """Values set in code (not from the environment) that are not among their setting's choices."""
    return [f"{s.variable}={getattr(owner, name)!r}: unknown, expected one of {'|'.join(s.choices)}"
            for name, s in settings.items() if s.choices is not None and getattr(owner, name) not in s.choices]


@dataclass(frozen=True)
class RewardConfig:
    """How the scorers are built (ORMs, `editgrpo score`, `editgrpo eval`, the trainer's analyzer)."""

    backend: str = "real"  # real models, or the offline rules proxies
    device: str = "auto"  # scorer/analyzer device; auto = cuda when available
    dtype: str = "float32"  # scorer/analyzer dtype
    batch_size: int = 32
    cache_size: int = 4096  # reference annotations kept per scorer (LRU)
    models_dir: str | None = None  # sub-dirs per model (rewards/paths.py)
    green_dir: str | None = None  # local GREEN judge (evaluation only)
    green_endpoint: str | None = None  # OpenAI-compatible judge server
    green_endpoint_model: str | None = None
    green_api_key: str | None = None

    @classmethod
    def parse(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> tuple["RewardConfig", list[str]]:
        """(config, problems): the environment, then `overrides` (CLI flags; None = not given)."""
        values, problems = parse_settings(REWARD_SETTINGS, os.environ if environ is None else environ)
        config = cls(**values)
        given = {k: v for k, v in overrides.items() if v is not None}
        config = replace(config, **given)
        if given:  # flags are checked like variables
            problems += check_choices(config, REWARD_SETTINGS)
        return config, problems + config.problems()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "RewardConfig":
        config, problems = cls.parse(environ, **overrides)
        if problems:
            raise SettingsError("invalid reward settings: " + "; ".join(problems))
        return config

    def problems(self) -> list[str]:
        """Values no scorer can use (a missing models dir is the preflight's: it names every file)."""
        found = []
        if self.batch_size < 1:
            found.append(f"EDITGRPO_BATCH_SIZE={self.batch_size}: must be >= 1")
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            found.append(f"EDITGRPO_DEVICE={self.device!r}: expected auto, cpu, mps, cuda or cuda:N")
        if self.cache_size < 0:
            found.append(f"EDITGRPO_REWARD_CACHE={self.cache_size}: must be >= 0")
        return found

    @property
    def expanded_models_dir(self) -> str | None:
        return os.path.expanduser(self.models_dir) if self.models_dir else None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "green_api_key"}


REWARD_SETTINGS: dict[str, Setting] = {
    "backend": Setting("EDITGRPO_REWARD_BACKEND", str.lower, BACKENDS),
    "device": Setting("EDITGRPO_DEVICE", parse_device),
    "dtype": Setting("EDITGRPO_REWARD_DTYPE", str.lower, DTYPES),
    "batch_size": Setting("EDITGRPO_BATCH_SIZE", int),
    "cache_size": Setting("EDITGRPO_REWARD_CACHE", int),
    "models_dir": Setting("EDITGRPO_MODELS_DIR"),
    "green_dir": Setting("EDITGRPO_GREEN_DIR"),
    "green_endpoint": Setting("EDITGRPO_GREEN_ENDPOINT"),
    "green_endpoint_model": Setting("EDITGRPO_GREEN_ENDPOINT_MODEL"),
    "green_api_key": Setting("EDITGRPO_GREEN_API_KEY"),
}
