"""Wall time per GRPO step: EditGRPO vs Dr.GRPO in real `swift rlhf`, and the time inside the edit hook.

Both runs use the same tiny Qwen2.5-VL, IU-XRay studies, seed and flags (run/rl_common.sh's
Dr.GRPO flags; offline lexicon analyzer and rules rewards); only EDITGRPO_EDITS differs. The
runs alternate A B B A ... (`--rounds`) so that a drift in machine load hits both alike. Step
time is swift's own `step_time` per optimizer step (each run's first step dropped: warm-up);
hook time is `editgrpo/hook_seconds` (gather + analysis + edits + re-tokenisation, inside
`_generate_completions`). Goal: hook <= 3 % of the step.

    python benchmarks/step_overhead.py [--rounds 2] [--steps 4] [--generations 4] [--prompts 2] [--max-new 32] [--nproc 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swift_plugins.editgrpo.tiny.model import build_tiny_model  # noqa: E402
from swift_plugins.editgrpo.tiny.swift_run import (benchmark_parser, grpo_args, interleaved_steps,  # noqa: E402
                                                   parse_benchmark_args, step_stats, timed_grpo_steps,
                                                   write_iu_dataset)


def measure(model: Path, dataset: Path, out: Path, edits: str, args: argparse.Namespace) -> list[dict]:
    grpo = grpo_args(dataset, args.generations, args.prompts, args.max_new, args.steps, args.nproc)
    return timed_grpo_steps(model, out, grpo, {"EDITGRPO_EDITS": edits}, nproc=args.nproc)


def summarise(steps: list[dict]) -> dict[str, float]:
    return {**step_stats(steps), "hook": statistics.mean(float(s.get("editgrpo/hook_seconds", 0.0)) for s in steps),
            "edited": statistics.mean(float(s.get("editgrpo/edited_fraction", 0.0)) for s in steps)}


def main() -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=2, help="groups per optimizer step")
    parser.add_argument("--max-new", type=int, default=32, help="max_completion_length")
    parser.add_argument("--nproc", type=int, default=1)
    args = parse_benchmark_args(parser)

    with tempfile.TemporaryDirectory(prefix="step_overhead_") as tmp:
        work = Path(tmp)
        model = build_tiny_model(work / "model")
        dataset = write_iu_dataset(work / "data", args.prompts * args.steps)
        configs = {"EditGRPO": "on", "Dr.GRPO": "off"}
        steps = interleaved_steps(list(configs), args.rounds, lambda round_, name: measure(
            model, dataset, work / f"{name}_{round_}", configs[name], args))
        results = {name: summarise(found) for name, found in steps.items()}

    base = results["Dr.GRPO"]["step"]
    print(f"tiny Qwen2.5-VL, G={args.generations}, {args.prompts} prompts/step, {args.max_new} new tokens, "
          f"{args.nproc} process(es), {args.rounds} run(s) x {args.steps - 1} timed steps each")
    print(f"{'run':<10} {'step s':>8} {'sd':>6} {'vs Dr.GRPO':>11} {'hook s':>8} {'hook %':>7} {'edited':>7}")
    for name, r in results.items():
        print(f"{name:<10} {r['step']:>8.3f} {r['step_sd']:>6.3f} {r['step'] / base - 1:>+10.1%} "
              f"{r['hook']:>8.4f} {r['hook'] / r['step']:>7.2%} {r['edited']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
