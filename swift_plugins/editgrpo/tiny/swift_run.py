"""Tiny end-to-end `swift` runs on CPU (tests, step-overhead benchmark): data, command, results.

`write_iu_dataset` writes studies in the project's sample format (two small generated PIL
views, the IU-XRay FINDINGS as assistant turn and `solution`); `swift_command` builds a
`swift rlhf --rlhf_type grpo` (or any swift sub-command) invocation with the plugin and the
CPU settings that work (no vLLM, no ModelScope model check; docs/algorithm.md §11);
`completion_rows` / `logged_steps` read what the run wrote.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from datasets_registry.iu_xray import read_report_rows
from datasets_registry.jsonl import read_jsonl, write_jsonl
from swift_plugins.editgrpo import REPO_ROOT
from templates import CXR_TEMPLATE

PLUGIN = REPO_ROOT / "swift_plugins" / "editgrpo" / "plugin.py"
IMAGE_SIZE = 56  # 4x4 patches -> 4 visual tokens per view (fast on CPU)
# Paper's Dr.GRPO flags (docs/algorithm.md §6); the same for EditGRPO and the baseline.
DR_GRPO_FLAGS: tuple[str, ...] = ("--advantage_estimator", "grpo", "--scale_rewards", "none", "--loss_type", "dr_grpo",
                                  "--beta", "0.01")
CPU_FLAGS: tuple[str, ...] = ("--use_vllm", "false", "--check_model", "false", "--dataloader_num_workers", "0",
                              "--save_strategy", "no", "--report_to", "none", "--logging_steps", "1")
OFFLINE_ENV = {"EDITGRPO_ANALYZER": "lexicon", "EDITGRPO_REWARD_BACKEND": "rules", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "MAX_PIXELS": str(IMAGE_SIZE * IMAGE_SIZE)}


def iu_reports(limit: int | None = None) -> list[dict[str, str]]:
    """IU-XRay rows with a FINDINGS section, in file order."""
    rows = [row for row in read_report_rows() if row["findings"].strip()]
    return rows[:limit] if limit is not None else rows


def write_iu_dataset(out_dir: str | Path, n: int, empty_reference_rows: Sequence[int] = (), seed: int = 0,
                     image_size: int = IMAGE_SIZE) -> Path:
    """`train.jsonl` with `n` IU-XRay studies (two `image_size`-px views each); rows listed in
    `empty_reference_rows` get an empty FINDINGS."""
    import numpy as np
    from PIL import Image

    from templates.prompt import StudyImage, build_messages

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for index, report in enumerate(iu_reports(n)):
        findings = "" if index in empty_reference_rows else report["findings"]
        views = []
        for view in ("PA", "LATERAL"):
            path = out / "images" / f"{report['uid']}_{view}.png"
            Image.fromarray((rng.random((image_size, image_size)) * 255).astype("uint8")).convert("RGB").save(path)
            views.append(StudyImage(str(path), view))
        context = {"indication": report["indication"] or None, "comparison": report["comparison"] or None}
        rows.append({
            "messages": build_messages(views, findings, technique=report["image"] or None, **context),
            "images": [v.path for v in views],
            "solution": findings,
            "study_id": report["uid"],
            "subject_id": report["uid"],
            "split": "train",
            "views": [v.view for v in views],
            "prior_study_id": None,
            "technique": report["image"] or None,
            **context,
        })
    path = out / "train.jsonl"
    write_jsonl(path, rows)
    return path


def swift_command(
    subcommand: str,
    model_dir: str | Path,
    output_dir: str | Path | None,
    args: Iterable[str] = (),
    plugin: str | Path | None = PLUGIN,
    nproc: int = 1,
    env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) for `swift <subcommand>` on the tiny model, offline, on CPU
    (`output_dir` None for commands without one, e.g. `infer`)."""
    swift = str(Path(sys.executable).with_name("swift"))
    argv = [swift, subcommand, "--model", str(model_dir), *args]
    if output_dir is not None:
        argv += ["--output_dir", str(output_dir)]
    if plugin is not None:
        argv += ["--external_plugins", str(plugin)]
    environment = {**os.environ, **OFFLINE_ENV, **(env or {})}
    if nproc > 1:
        environment["NPROC_PER_NODE"] = str(nproc)
        argv += ["--use_cpu", "true", "--ddp_backend", "gloo"]
    return argv, environment


def grpo_args(
    dataset: str | Path,
    num_generations: int,
    prompts_per_step: int,
    max_completion_length: int,
    max_steps: int,
    nproc: int = 1,
    reward_funcs: Sequence[str] = ("editgrpo_clinical",),
    template: str = CXR_TEMPLATE,
) -> list[str]:
    """GRPO arguments: `prompts_per_step` groups of `num_generations` per optimizer step, split over ranks."""
    rollouts = prompts_per_step * num_generations
    if rollouts % nproc:
        raise ValueError(f"{rollouts} rollouts per step do not split over {nproc} processes")
    return ["--rlhf_type", "grpo", "--template", template, "--dataset", str(dataset),
            "--reward_funcs", *reward_funcs, "--num_generations", str(num_generations),
            "--per_device_train_batch_size", str(rollouts // nproc), "--max_completion_length",
            str(max_completion_length), "--max_steps", str(max_steps), "--temperature", "1.0",
            "--tuner_type", "full", "--freeze_vit", "true", "--log_completions", "true", *DR_GRPO_FLAGS, *CPU_FLAGS]


def run(argv: list[str], env: dict[str, str], timeout: float = 600, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def run_dir(output_dir: str | Path) -> Path:
    """swift writes into `<output_dir>/v<N>-<time>/`; the newest one."""
    candidates = sorted(Path(output_dir).glob("v*-*"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(f"no swift run directory under {output_dir}")
    return candidates[-1]


def completion_rows(output_dir: str | Path) -> list[dict]:
    """completions.jsonl as one dict per rollout (step, prompt, completion, rewards, advantages, ...).

    swift appends a column table at each logging step and once more at the end of training
    (a repeat of the last step); each step's last table is kept.
    """
    tables: dict[str, dict] = {}
    for table in read_jsonl(run_dir(output_dir) / "completions.jsonl"):
        tables[table["step"][0]] = table
    rows = []
    for step in sorted(tables, key=int):
        table = tables[step]
        rows.extend({key: values[i] for key, values in table.items()} for i in range(len(table["step"])))
    return rows


def benchmark_parser(description: str) -> argparse.ArgumentParser:
    """The step-time benchmarks' shared options; `parse_benchmark_args` checks them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=2, help="runs per configuration, interleaved A B B A")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run")
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first step is dropped)")
    return args


def interleaved_steps(names: Sequence[str], rounds: int,
                      measure: Callable[[int, str], list[dict]]) -> dict[str, list[dict]]:
    """Each configuration's timed steps over `rounds` runs, measured in the order A B B A A B ... so that a
    drift in machine load hits every configuration alike; `measure(round, name)` returns one run's steps."""
    steps: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else list(names)[::-1]:
            steps[name] += measure(round_, name)
    return steps


def step_stats(steps: Sequence[dict]) -> dict[str, float]:
    """Mean and sd of swift's `step_time` over timed steps."""
    import statistics

    times = [float(s["step_time"]) for s in steps]
    return {"step": statistics.mean(times), "step_sd": statistics.stdev(times) if len(times) > 1 else 0.0}


def timed_grpo_steps(model_dir: str | Path, output_dir: str | Path, args: Sequence[str], env: dict[str, str],
                     nproc: int = 1) -> list[dict]:
    """The logged steps of one `swift rlhf` run with the plugin, the first (warm-up) step dropped (benchmarks)."""
    argv, environment = swift_command("rlhf", model_dir, output_dir, args, nproc=nproc, env=env)
    result = run(argv, environment, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"swift rlhf ({model_dir}, {env}) failed:\n{result.stderr[-4000:]}")
    return logged_steps(output_dir)[1:]


def logged_steps(output_dir: str | Path) -> list[dict]:
    """The per-step metric dicts of logging.jsonl (those with a `loss`)."""
    return [entry for entry in read_jsonl(run_dir(output_dir) / "logging.jsonl") if "loss" in entry]
