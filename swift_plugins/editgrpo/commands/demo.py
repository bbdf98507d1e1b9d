"""`editgrpo demo`: the embedded CPU demo (what `make demo` / `run/demo.sh` run).

Synthetic two-view chest X-rays → tiny Qwen2.5-VL → `swift sft` → `swift rlhf` EditGRPO and
Dr.GRPO from the same SFT checkpoint and step budget → `swift infer` on held-out studies →
`editgrpo eval` (offline rules backend). Re-running resumes; a changed configuration restarts.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROFILE_ENV = "EDITGRPO_DEMO_PROFILE"
PROFILE_NAMES = ("full", "quick")  # swift_plugins.editgrpo.tiny.demo.PROFILES (a test keeps them equal; that module is heavy)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory (default demo_out)")
    parser.add_argument(
        "--profile", choices=PROFILE_NAMES, default=os.environ.get(PROFILE_ENV, "full"),
        help=f"full = the demo (~10 min on 2 cores after set-up); quick = a few steps of every stage (tests). Default ${PROFILE_ENV} or full",
    )
    parser.add_argument("--restart", action="store_true", help="discard earlier stages in --out and start over")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="seconds between progress lines")
    for name, kind, text in (
        ("n-train", int, "synthetic training studies"),
        ("n-test", int, "held-out studies for evaluation"),
        ("seed", int, "seed of the data, training and edits"),
        ("sft-steps", int, "SFT optimizer steps"),
        ("rl-steps", int, "GRPO steps of each RL run (EditGRPO and Dr.GRPO get the same budget)"),
        ("rl-lr", float, "GRPO learning rate"),
        ("num-generations", int, "rollouts per prompt (G)"),
    ):
        parser.add_argument(f"--{name}", type=kind, help=f"{text} (overrides the profile)")
    parser.add_argument("--edit-match", choices=("affinity", "paper"),
                        help="entity matching of the EditGRPO run (EDITGRPO_MATCH; overrides the profile)")


def run(args: argparse.Namespace) -> int:
    from swift_plugins.editgrpo.tiny.demo import profile, run_demo

    try:
        config = profile(
            args.profile, n_train=args.n_train, n_test=args.n_test, seed=args.seed, sft_steps=args.sft_steps,
            rl_steps=args.rl_steps, rl_lr=args.rl_lr, num_generations=args.num_generations,
            edit_match=args.edit_match,
        )
        run_demo(args.out, config, restart=args.restart, heartbeat=args.heartbeat)  # DemoError: cli.main, exit 1
    except KeyboardInterrupt:
        print("editgrpo demo: interrupted; run it again to resume from the unfinished stage", file=sys.stderr)
        return 130
    return 0
