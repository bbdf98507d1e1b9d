"""`editgrpo check-weights`: is every scorer/analyzer model file in place? (exit 1 and what is missing).

A location given as a hub id counts as in place only when the local hub cache holds it complete;
otherwise it is listed as one transformers would download on first use, and the check fails:
this command answers whether a run can start without the network.
"""
from __future__ import annotations

import argparse

from rewards.config import METRICS, REWARD_METRICS
from swift_plugins.editgrpo.commands import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", help="root of the model dirs (default: $EDITGRPO_MODELS_DIR or ~/.cache/editgrpo/models)")
    parser.add_argument("--metrics", nargs="+", default=list(REWARD_METRICS), choices=METRICS,
                        help="which metrics to check (default: the reward's three)")


def run(args: argparse.Namespace) -> int:
    from rewards.paths import MissingWeightsError, ModelPaths, preflight, requirements

    paths = ModelPaths.from_env(args.models_dir)
    downloads = 0
    for req, problem in requirements(args.metrics, paths):
        if problem is None and req.downloads():
            downloads += 1
            print(f"hub {req.metric:<9} {req.what}: {req.path} is not on disk nor in the hub cache; "
                  f"it would be downloaded from {req.source} on first use")
        elif problem is None:
            print(f"ok  {req.metric:<9} {req.what}: {req.path}")
    try:
        preflight(args.metrics, paths)  # every problem of every requirement, with layouts and sources
    except MissingWeightsError as err:
        print(err)  # the report is this command's output (stdout); the failure line goes to stderr
        raise CommandError("model files are missing (listed above)") from None
    if downloads:
        raise CommandError(f"{downloads} model(s) are not on disk (listed above): download them first, "
                           "or run where the hub is reachable")
    return 0
