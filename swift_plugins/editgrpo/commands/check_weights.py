"""`editgrpo check-weights`: is every scorer/analyzer model file in place? (exit 1 and what is missing)."""
from __future__ import annotations

import argparse

from swift_plugins.editgrpo.commands import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", help="root of the model dirs (default: $EDITGRPO_MODELS_DIR or ~/.cache/editgrpo/models)")
    parser.add_argument("--metrics", nargs="+", default=["chexbert", "radgraph", "ratescore"],
                        choices=["chexbert", "radgraph", "ratescore", "green"], help="which metrics to check (default: the reward's three)")


def run(args: argparse.Namespace) -> int:
    from rewards.paths import MissingWeightsError, ModelPaths, preflight, requirements

    paths = ModelPaths.from_env(args.models_dir)
    try:
        preflight(args.metrics, paths)
    except MissingWeightsError as err:
        print(err)  # the report is this command's output (stdout); the failure line goes to stderr
        raise CommandError("model files are missing (listed above)") from None
    for req, _ in requirements(args.metrics, paths):
        print(f"ok  {req.metric:<9} {req.what}: {req.path}")
    return 0
