"""`editgrpo arena`: RL methods x seeds from one SFT checkpoint of the embedded task, with confidence intervals.

Writes `arena_out/` (arena.md/.csv/.json, arena.png, reward_curves.png, runs/<method>/seed<s>/);
re-running resumes (finished runs kept, an interrupted one redone, new methods or seeds added).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swift_plugins.editgrpo.commands.demo import add_task_options, task_overrides

PROFILE_NAMES = ("full", "quick")  # swift_plugins.editgrpo.tiny.arena.PROFILES (that module is heavy to import)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("arena_out"), help="output directory (default arena_out)")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="full",
                        help="full = SFT, Dr.GRPO, EditGRPO, EditGRPO-paper x 5 seeds; quick = 3 methods x 2 seeds, "
                             "a few steps (tests)")
    parser.add_argument("--methods", help="comma-separated method names (default: the profile's; see --list)")
    parser.add_argument("--seeds", help="run seeds, e.g. 1,2,3 or 1-5 (default: the profile's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (each gets its share of the cores)")
    parser.add_argument("--list", action="store_true", help="list the registered methods and exit")
    parser.add_argument("--restart", action="store_true", help="discard everything in --out and start over")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="seconds between progress lines")
    add_task_options(parser)


def run(args: argparse.Namespace) -> int:
    from swift_plugins.editgrpo.commands import UsageError
    from swift_plugins.editgrpo.tiny.arena import METHODS, ArenaError, profile, run_arena

    if args.list:
        for method in METHODS.values():
            print(f"{method.name:24} {method.description}")
        return 0
    if args.jobs < 1 or not args.heartbeat > 0:
        raise UsageError(f"--jobs must be >= 1 and --heartbeat > 0, got {args.jobs} and {args.heartbeat}")
    try:
        config = profile(args.profile, methods=args.methods, seeds=args.seeds, **task_overrides(args))
    except ArenaError as error:
        raise UsageError(str(error)) from None
    try:
        run_arena(args.out, config, jobs=args.jobs, restart=args.restart, heartbeat=args.heartbeat)
    except KeyboardInterrupt:
        print("editgrpo arena: interrupted; run it again to resume (finished runs are kept)", file=sys.stderr)
        return 130
    return 0
