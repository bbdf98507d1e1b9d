"""EditGRPO for ms-swift.

The composition root (README "Layout"): it imports `templates`, `datasets_registry` and
`rewards`, never the other way round. Importing this package is cheap and touches no
swift/transformers code; `register()` wires everything into swift; `plugin.py` calls it.
"""
from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parents[2]  # run/ recipes and plugin.py are found from here

TRAINER_PATH = "swift_plugins.editgrpo.trainer.EditGRPOTrainer"
# (module, function) registering the ORMs, templates and data sets in swift's registries
REGISTRARS: tuple[tuple[str, str], ...] = (
    ("rewards.orms", "register_orms"),
    ("templates", "register_templates"),
    ("datasets_registry.registration", "register_datasets"),
)


def register() -> list[str]:
    """Make `swift rlhf --rlhf_type grpo` use EditGRPOTrainer and register ORMs/templates/data sets.

    Idempotent (swift replays plugins in data-loader workers); returns what was registered.
    Nothing heavy is loaded: swift resolves the trainer's dotted path only when it builds it.
    """
    from swift.trainers import TrainerFactory

    TrainerFactory.TRAINER_MAPPING["grpo"] = TRAINER_PATH
    registered = [TRAINER_PATH]
    for module_name, function in REGISTRARS:
        getattr(importlib.import_module(module_name), function)()
        registered.append(f"{module_name}.{function}")
    return registered
