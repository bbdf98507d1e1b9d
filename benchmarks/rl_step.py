"""Wall time per `swift rlhf` GRPO step of the CPU demo: the tiny model's own vocabulary vs Qwen's 151,936 rows.

The tiny model (`editgrpo tiny-model`) used to carry Qwen's full vocabulary so that its special
tokens sat on Qwen's ids; ~4,100 rows are reachable. This benchmark builds today's compact
checkpoint and a copy whose embedding and output layers are padded back to 151,936 rows (the
extra rows unreachable, as the old filler ids were), everything else identical, and runs the
demo's RL step on both: 4 prompts x G = 4, 64 new tokens, temperature 1, EditGRPO edits,
rules reward, lexicon analyzer, no KL model, lr 5e-5. Runs alternate A B B A (`--rounds`) so a
drift in machine load hits both alike. Step time is swift's `step_time` per optimizer step (the
first step of each run dropped: warm-up).

    python benchmarks/rl_step.py [--rounds 2] [--steps 4]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swift_plugins.editgrpo.tiny.model import SPECIAL_BIAS, build_tiny_model  # noqa: E402
from swift_plugins.editgrpo.tiny.swift_run import (benchmark_parser, grpo_args, interleaved_steps,  # noqa: E402
                                                   parse_benchmark_args, step_stats, timed_grpo_steps,
                                                   write_iu_dataset)

QWEN_ROWS = 151936
DEMO_RL = {"prompts": 4, "generations": 4, "max_new": 64, "lr": "5e-5"}


def pad_vocabulary(model_dir: Path, out_dir: Path, rows: int = QWEN_ROWS) -> Path:
    """A copy of the checkpoint with `rows` embedding/output rows; the new ones are never sampled."""
    import shutil

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    shutil.copytree(model_dir, out_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    old = model.get_output_embeddings().weight.shape[0]
    model.resize_token_embeddings(rows, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[old:].zero_()
        output = model.get_output_embeddings().weight
        output[old:].zero_()
        output[old:, 0] = SPECIAL_BIAS
    model.save_pretrained(out_dir)
    return out_dir


def measure(model: Path, dataset: Path, out: Path, steps: int) -> list[dict]:
    """One run's timed steps, printed as they come (the spread between runs is part of the reading)."""
    args = grpo_args(dataset, DEMO_RL["generations"], DEMO_RL["prompts"], DEMO_RL["max_new"], steps)
    args += ["--learning_rate", DEMO_RL["lr"], "--beta", "0"]
    found = timed_grpo_steps(model, out, args, {"EDITGRPO_EDITS": "on", "MAX_PIXELS": str(112 * 112)})
    print(f"  {out.name}: " + " ".join(f"{float(s['step_time']):.2f}" for s in found) + " s/step", flush=True)
    return found


def summarise(steps: list[dict]) -> dict[str, float]:
    length = statistics.mean(float(s.get("completions/mean_length", 0.0)) for s in steps)
    return {**step_stats(steps), "length": length}


def main() -> int:
    args = parse_benchmark_args(benchmark_parser(__doc__.splitlines()[0]))

    with tempfile.TemporaryDirectory(prefix="rl_step_") as tmp:
        work = Path(tmp)
        compact = build_tiny_model(work / "compact")
        models = {"Qwen rows": pad_vocabulary(compact, work / "qwen_rows"), "own vocab": compact}
        dataset = write_iu_dataset(work / "data", DEMO_RL["prompts"] * args.steps)
        steps = interleaved_steps(list(models), args.rounds, lambda round_, name: measure(
            models[name], dataset, work / f"{name.replace(' ', '_')}_round{round_ + 1}", args.steps))
        results = {name: summarise(found) for name, found in steps.items()}

    base = results["Qwen rows"]["step"]
    print(f"demo RL step: {DEMO_RL['prompts']} prompts x G={DEMO_RL['generations']}, {DEMO_RL['max_new']} new tokens, "
          f"{args.rounds} run(s) x {args.steps - 1} timed steps each")
    print(f"{'model':<10} {'rows':>7} {'step s':>8} {'sd':>6} {'speed-up':>9} {'mean len':>9}")
    for name, r in results.items():
        rows = QWEN_ROWS if name == "Qwen rows" else "own"
        print(f"{name:<10} {rows:>7} {r['step']:>8.3f} {r['step_sd']:>6.3f} {base / r['step']:>8.2f}x {r['length']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
