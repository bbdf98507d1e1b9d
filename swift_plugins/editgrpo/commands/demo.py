"""`editgrpo demo`: the embedded CPU demo (what `make demo` / `run/demo.sh` run).

Synthetic two-view chest X-rays → tiny Qwen2.5-VL → `swift sft` → `swift rlhf` EditGRPO and
Dr.GRPO from the same SFT checkpoint and step budget → `swift infer` on held-out studies →
`editgrpo eval` (offline rules backend). Re-running resumes; a changed configuration restarts.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from swift_plugins.editgrpo.algorithm.matching import MATCH_MODES

from swift_plugins.editgrpo.commands import UsageError

PROFILE_ENV = "EDITGRPO_DEMO_PROFILE"
PROFILE_NAMES = ("full", "quick")  # swift_plugins.editgrpo.tiny.demo.PROFILES (a test keeps them equal; that module is heavy)


# the task, SFT and RL settings (tiny.demo.DemoConfig fields) the demo and the arena take on the command line
TASK_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("n-train", int, "synthetic training studies"),
    ("n-test", int, "held-out studies for evaluation"),
    ("seed", int, "seed of the data, training and edits"),
    ("sft-steps", int, "SFT optimizer steps"),
    ("rl-steps", int, "GRPO steps of each RL run (every method gets the same budget)"),
    ("rl-prompts-per-step", int, "prompts (groups) per GRPO step"),
    ("rl-lr", float, "GRPO learning rate"),
    ("num-generations", int, "rollouts per prompt (G)"),
    ("family", str, "policy architecture of the tiny model: qwen2_5_vl (default), qwen3_vl or qwen3_5"),
)


def add_task_options(parser: argparse.ArgumentParser) -> None:
    for name, kind, text in TASK_OPTIONS:
        parser.add_argument(f"--{name}", type=kind, help=f"{text} (overrides the profile)")


def task_overrides(args: argparse.Namespace) -> dict[str, object]:
    return {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name, _, _ in TASK_OPTIONS}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory (default demo_out)")
    parser.add_argument(
        "--profile", choices=PROFILE_NAMES, default=os.environ.get(PROFILE_ENV, "full"),
        help=f"full = the demo (~4 min on 2 cores after set-up); quick = a few steps of every stage (tests). Default ${PROFILE_ENV} or full",
    )
    parser.add_argument("--restart", action="store_true", help="discard earlier stages in --out and start over")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="seconds between progress lines")
    add_task_options(parser)
    parser.add_argument("--edit-match", choices=MATCH_MODES,
                        help="entity matching of the EditGRPO run (EDITGRPO_MATCH; overrides the profile)")


def run(args: argparse.Namespace) -> int:
    from swift_plugins.editgrpo.tiny.demo import profile, run_demo

    if not (math.isfinite(args.heartbeat) and args.heartbeat > 0):
        raise UsageError(f"--heartbeat {args.heartbeat}: must be a finite number of seconds > 0")
    config = profile(args.profile, **task_overrides(args), edit_match=args.edit_match)  # DemoConfigError: exit 2
    try:
        run_demo(args.out, config, restart=args.restart, heartbeat=args.heartbeat)  # DemoError: cli.main, exit 1
    except KeyboardInterrupt:
        print("editgrpo demo: interrupted; run it again to resume from the unfinished stage", file=sys.stderr)
        return 130
    return 0
