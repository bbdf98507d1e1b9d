"""The embedded CPU demo: synthetic data → tiny model → SFT → EditGRPO / Dr.GRPO → infer → eval.

Every training/inference stage runs the project's own recipes (`run/sft.sh`, `run/editgrpo.sh`,
`run/grpo_baseline.sh`, `run/infer.sh`, `run/evaluate.sh`) with CPU-sized settings, so the demo
also proves the recipes work end to end. Both RL runs start from the same SFT checkpoint with
the same seed, step budget and flags; the only difference is `EDITGRPO_EDITS`.

Re-running is safe (`stages`): an interrupted run resumes at the unfinished stage, a changed
setting redoes the stages it affects (e.g. more GRPO steps keep the SFT checkpoint), and one
directory never mixes results of two configurations. `restart=True` starts over from scratch.
"""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from datasets_registry.jsonl import read_jsonl
from rewards.config import SettingsError
from swift_plugins.editgrpo import REPO_ROOT
from swift_plugins.editgrpo.algorithm.matching import MATCH_MODES
from swift_plugins.editgrpo.tiny import stages as stages_lib
from swift_plugins.editgrpo.tiny.stages import Stage, StageError, digest, run_file, run_logged
from templates.families import DEFAULT_FAMILY, FAMILIES

RUN_DIR = REPO_ROOT / "run"
PIPELINE_VERSION = 1  # bump when stage commands change: old output dirs then restart cleanly
KIND = "demo"
RUN_FILE = run_file(KIND)
METHODS = ("sft", "drgrpo", "editgrpo")
DATASET = "cxr-synthetic"  # run/common.sh preset; files in $EDITGRPO_DATA_DIR/cxr_synthetic/
# Image budget of the tiny model: 112x112 px = 16 visual tokens per view.
MAX_PIXELS, MIN_PIXELS = 112 * 112, 56 * 56  # Qwen2.5-VL's grid; other families get the same token budget


DemoError = StageError  # a stage failed, the output dir is unusable, or a profile is unknown


class DemoConfigError(SettingsError):
    """Raised once with every invalid DemoConfig value (cli.main: a usage error, exit 2)."""


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines the demo's result (each stage fingerprints the fields it uses)."""

    n_train: int = 400
    n_test: int = 100
    seed: int = 0
    # 150 SFT steps: at 60 the cosine schedule ends near 1.5 nats/token and the policy writes word
    # salad; at 150 it reaches ~0.8 and writes coherent reports (same demo wall time budget).
    sft_steps: int = 150
    sft_batch: int = 8
    sft_lr: float = 1e-3
    # 32 steps x 8 prompts x G = 8 at lr 2e-5 (64 rollouts per step): at 16 x 4 x 4 and 5e-5 the update
    # was mostly noise, every method ending within +-0.07 Avg of SFT by seed (README "The arena")
    rl_steps: int = 32
    rl_prompts_per_step: int = 8
    num_generations: int = 8
    rl_lr: float = 2e-5
    edit_match: str = "affinity"  # EDITGRPO_MATCH of the EditGRPO run (affinity = reference code, paper)
    beta: float = 0.0  # no reference model on CPU: the KL term's forward pass is a third of a step
    temperature: float = 1.0
    max_completion_length: int = 64
    infer_max_new_tokens: int = 80
    family: str = DEFAULT_FAMILY  # the tiny policy's architecture (templates.families)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise DemoConfigError("invalid demo settings: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Values no stage can run with: caught here, not minutes later inside swift (num_generations=0,
        rl_lr=nan); GRPO needs >= 2 rollouts per prompt to compare, numpy a seed >= 0."""
        minimum = {"n_train": 1, "n_test": 1, "seed": 0, "sft_steps": 1, "sft_batch": 1, "rl_steps": 1,
                   "rl_prompts_per_step": 1, "num_generations": 2, "max_completion_length": 1, "infer_max_new_tokens": 1}
        found = [f"{name}={getattr(self, name)!r}: must be >= {low}" for name, low in minimum.items()
                 if getattr(self, name) < low]
        found += [f"{name}={getattr(self, name)!r}: must be a finite number > 0" for name in ("sft_lr", "rl_lr", "temperature")
                  if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0)]
        if not (math.isfinite(self.beta) and self.beta >= 0):
            found.append(f"beta={self.beta!r}: must be a finite number >= 0")
        if self.family not in FAMILIES:
            found.append(f"family={self.family!r}: expected one of {'|'.join(FAMILIES)}")
        if self.edit_match not in MATCH_MODES:
            found.append(f"edit_match={self.edit_match!r}: expected one of {'|'.join(MATCH_MODES)}")
        return found

    def fingerprint(self) -> str:
        return digest({"version": PIPELINE_VERSION, **asdict(self)})


PROFILES: dict[str, DemoConfig] = {
    "full": DemoConfig(),
    # a few steps of everything: the end-to-end test (minutes on 2 cores)
    "quick": DemoConfig(
        n_train=24, n_test=6, sft_steps=4, sft_batch=4, rl_steps=2, rl_prompts_per_step=2,
        num_generations=2, max_completion_length=24, infer_max_new_tokens=24,
    ),
}


def clean_env(config: DemoConfig, out: Path) -> dict[str, str]:
    """The environment of every stage: the caller's, minus anything that would change the run
    (other EDITGRPO_* settings, multi-process launch variables, GPUs), plus the demo's settings."""
    dropped = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "DRY_RUN")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDITGRPO_") and k not in dropped}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        CUDA_VISIBLE_DEVICES="",
        MODEL_FAMILY=config.family,
        MAX_PIXELS=str(FAMILIES[config.family].same_budget(MAX_PIXELS)),
        MIN_PIXELS=str(FAMILIES[config.family].same_budget(MIN_PIXELS)),
        EDITGRPO_DATA_DIR=str(out / "data"),
        EDITGRPO_REWARD_BACKEND="rules",
        EDITGRPO_ANALYZER="lexicon",
        EDITGRPO_SEED=str(config.seed),
    )
    return env


# ----------------------------------------------------------------------------- stages

@dataclass
class Context:
    config: DemoConfig
    out: Path
    env: dict[str, str]
    heartbeat: float
    log_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_dir = self.out / "logs"

    @property
    def data_dir(self) -> Path:
        return self.out / "data" / DATASET.replace("-", "_")

    def checkpoint(self, method: str) -> Path:
        """The final checkpoint of a training stage."""
        return latest_checkpoint(self.out / method)

    def result(self, method: str) -> Path:
        return self.out / "infer" / f"{method}.jsonl"

    def recipe(self, script: str, args: list[str], label: str, env: dict[str, str] | None = None) -> None:
        run_logged(["bash", str(RUN_DIR / script), *args], {**self.env, **(env or {})},
                   self.log_dir / f"{label}.log", label, self.heartbeat, REPO_ROOT)


def latest_checkpoint(run_dir: Path) -> Path:
    """swift's highest `checkpoint-N` under a training output dir."""
    found = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if not found:
        raise DemoError(f"no checkpoint under {run_dir}")
    return found[-1]


def _stage_data(ctx: Context) -> None:
    from datasets_registry.synthetic import generate

    paths = generate(ctx.data_dir, ctx.config.n_train, ctx.config.n_test, seed=ctx.config.seed)
    reports = [row["solution"] for row in read_jsonl(paths.train)]
    (ctx.out / "data" / "corpus.txt").write_text("\n".join(reports) + "\n", encoding="utf-8")
    print(f"    {ctx.config.n_train} train / {ctx.config.n_test} test studies in {ctx.data_dir}", flush=True)


def _stage_tiny_model(ctx: Context) -> None:
    cmd = [sys.executable, "-m", "swift_plugins.editgrpo.cli", "tiny-model", str(ctx.out / "tiny_model"),
           "--corpus", str(ctx.out / "data" / "corpus.txt"), "--family", ctx.config.family]
    run_logged(cmd, ctx.env, ctx.log_dir / "tiny_model.log", "tiny_model", ctx.heartbeat, REPO_ROOT)


def _cpu_train_env(ctx: Context) -> dict[str, str]:
    """run/common.sh overrides: tiny model, fp32 on CPU, no DeepSpeed, trainable vision tower
    (the tiny one is random, unlike Qwen2.5-VL's)."""
    return {
        "DATASET": DATASET,
        "BASE_MODEL": str(ctx.out / "tiny_model"),
        "TEMPLATE": FAMILIES[ctx.config.family].cxr_template,
        "TORCH_DTYPE": "float32",
        "FREEZE_VIT": "false",
        "DEEPSPEED": "none",
        "USE_CPU": "1",
        "GRADIENT_CHECKPOINTING": "false",
        "DATALOADER_WORKERS": "0",
        "DATASET_NUM_PROC": "1",
        "REPORT_TO": "none",
        "OUTPUT_ROOT": str(ctx.out),
    }


def _stage_sft(ctx: Context) -> None:
    c = ctx.config
    env = {**_cpu_train_env(ctx), "SFT_LR": str(c.sft_lr), "SFT_GLOBAL_BATCH": str(c.sft_batch),
           "SFT_PER_DEVICE_BATCH": str(c.sft_batch), "OUTPUT_DIR": str(ctx.out / "sft")}
    ctx.recipe("sft.sh", ["--max_steps", str(c.sft_steps), "--save_strategy", "steps",
                          "--save_steps", str(c.sft_steps), "--warmup_ratio", "0.05",
                          "--max_length", "512", "--seed", str(c.seed)], "sft", env)


def rl_run(ctx: Context, script: str, output_dir: Path, seed: int, label: str, env: dict[str, str]) -> None:
    """One GRPO run of a recipe from the SFT checkpoint with the config's RL budget (demo and arena)."""
    c = ctx.config
    run_env = {
        **_cpu_train_env(ctx),
        "SFT_CHECKPOINT": str(ctx.checkpoint("sft")),
        "OUTPUT_DIR": str(output_dir),
        "USE_VLLM": "false",
        "NUM_GENERATIONS": str(c.num_generations),
        "PROMPTS_PER_STEP": str(c.rl_prompts_per_step),
        "PER_DEVICE_BATCH": str(c.rl_prompts_per_step * c.num_generations),
        "RL_LR": str(c.rl_lr),
        "RL_MAX_STEPS": str(c.rl_steps),
        "BETA": str(c.beta),
        "TEMPERATURE": str(c.temperature),
        "MAX_COMPLETION_LENGTH": str(c.max_completion_length),
        "EDITGRPO_SEED": str(seed),
        **env,
    }
    ctx.recipe(script, ["--save_strategy", "steps", "--save_steps", str(c.rl_steps),
                        "--seed", str(seed), "--data_seed", str(seed)], label, run_env)


def infer_run(ctx: Context, checkpoint: Path, result: Path, label: str) -> None:
    """Greedy `run/infer.sh` of a checkpoint on the held-out studies."""
    args = ["--model", str(checkpoint), "--data", str(ctx.data_dir / "test.jsonl"), "--out", str(result)]
    env = {"MAX_NEW_TOKENS": str(ctx.config.infer_max_new_tokens), "MAX_BATCH_SIZE": "16",
           "TEMPLATE": FAMILIES[ctx.config.family].cxr_template, "OVERWRITE": "1"}
    ctx.recipe("infer.sh", args, label, env)


def _rl_stage(method: str) -> Callable[[Context], None]:
    script = {"editgrpo": "editgrpo.sh", "drgrpo": "grpo_baseline.sh"}[method]

    def stage(ctx: Context) -> None:
        rl_run(ctx, script, ctx.out / method, ctx.config.seed, method, {"EDITGRPO_MATCH": ctx.config.edit_match})

    return stage


def _infer_stage(method: str) -> Callable[[Context], None]:
    def stage(ctx: Context) -> None:
        infer_run(ctx, ctx.checkpoint(method), ctx.result(method), f"infer_{method}")

    return stage


def _stage_eval(ctx: Context) -> None:
    args = ["--out", str(ctx.out / "eval"), *(str(ctx.result(m)) for m in METHODS),
            "--names", ",".join(METHODS), "--metrics", "chexbert,radgraph,ratescore,bleu4,rouge_l"]
    ctx.recipe("evaluate.sh", args, "eval", {"BACKEND": "rules"})


RL_SETTINGS = ("rl_steps", "rl_prompts_per_step", "num_generations", "rl_lr", "beta", "temperature",
               "max_completion_length", "seed")
STAGES: tuple[Stage, ...] = (
    Stage("data", ("data",), _stage_data, ("n_train", "n_test", "seed")),
    Stage("tiny_model", ("tiny_model",), _stage_tiny_model, ("family",), added={"family": DEFAULT_FAMILY}),
    Stage("sft", ("sft",), _stage_sft, ("sft_steps", "sft_batch", "sft_lr", "seed")),
    Stage("editgrpo", ("editgrpo",), _rl_stage("editgrpo"), (*RL_SETTINGS, "edit_match")),
    Stage("drgrpo", ("drgrpo",), _rl_stage("drgrpo"), RL_SETTINGS),
    *(Stage(f"infer_{m}", (f"infer/{m}.jsonl", f"infer/{m}.settings.json"), _infer_stage(m), ("infer_max_new_tokens",))
      for m in METHODS),
    Stage("eval", ("eval",), _stage_eval),
)


# ----------------------------------------------------------------------------- summary

def read_logging(run_dir: Path) -> list[dict]:
    """swift's per-step metrics (logging.jsonl) of a training run."""
    path = run_dir / "logging.jsonl"
    if not path.exists():
        return []
    return [row for row in read_jsonl(path) if "reward" in row or "loss" in row]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def edit_telemetry(out: Path) -> dict:
    """Per-run reward curves and EditGRPO's edit statistics, from swift's step logs."""
    curves = {m: [float(r["reward"]) for r in read_logging(out / m) if "reward" in r] for m in ("drgrpo", "editgrpo")}
    steps = [r for r in read_logging(out / "editgrpo") if "editgrpo/edited_fraction" in r]
    ops: dict[str, float] = {}
    for row in steps:
        for key, value in row.items():
            if key.startswith("editgrpo/ops/"):
                ops[key.removeprefix("editgrpo/ops/")] = ops.get(key.removeprefix("editgrpo/ops/"), 0) + float(value)

    def column(key: str) -> float | None:
        return _mean([float(r[key]) for r in steps if key in r])

    return {
        "steps": len(steps),
        "edited_fraction": column("editgrpo/edited_fraction"),
        "success_rate": column("editgrpo/success_rate"),
        "ops": ops,
        "reward_edited": column("editgrpo/reward_edited"),
        "reward_on_policy": column("editgrpo/reward_on_policy"),
        "hook_seconds_per_step": column("editgrpo/hook_seconds"),
        "reward_curves": curves,
        # on-policy reward of EditGRPO is what the policy itself produced; compare it with Dr.GRPO's
        "on_policy_reward_curve_editgrpo": [float(r["editgrpo/reward_on_policy"]) for r in steps
                                            if "editgrpo/reward_on_policy" in r],
    }


def plot_reward_curves(telemetry: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in telemetry["reward_curves"].items():
        ax.plot(range(1, len(curve) + 1), curve, label=f"{name} (all rollouts)")
    on_policy = telemetry["on_policy_reward_curve_editgrpo"]
    ax.plot(range(1, len(on_policy) + 1), on_policy, "--", label="editgrpo (on-policy rollouts)")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean clinical reward (rules)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(out: Path, timings: dict[str, dict[str, float]]) -> dict:
    """summary.json: {method: {metric: value}} for sft/drgrpo/editgrpo, wall_seconds (sum of the
    stages' wall times, also when they ran in several invocations), per-stage wall and CPU times."""
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    summary: dict = {m: metrics["runs"][m] for m in METHODS}
    summary["wall_seconds"] = round(sum(t["seconds"] for t in timings.values()), 1)
    summary["cpu_seconds"] = round(sum(t.get("cpu_seconds", 0.0) for t in timings.values()), 1)
    summary["stage_seconds"] = {k: round(t["seconds"], 1) for k, t in timings.items()}
    summary["stage_cpu_seconds"] = {k: round(t.get("cpu_seconds", 0.0), 1) for k, t in timings.items()}
    summary["backend"] = "rules (offline proxies of CheXbert/RadGraph/RaTEScore)"
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    telemetry = edit_telemetry(out)
    (out / "edit_telemetry.json").write_text(json.dumps(telemetry, indent=2) + "\n")
    plot_reward_curves(telemetry, out / "reward_curves.png")
    return summary


def run_stages(out: Path, config: DemoConfig, stages: tuple[Stage, ...] = STAGES, restart: bool = False,
               heartbeat: float = 15.0) -> dict[str, dict[str, float]]:
    """The demo's stages in `out` (see `stages.run_stages`)."""
    context = Context(config, out, clean_env(config, out), heartbeat)
    return stages_lib.run_stages(out, KIND, config, PIPELINE_VERSION, stages, context, restart, "EditGRPO demo")


def run_demo(out: Path, config: DemoConfig, restart: bool = False, heartbeat: float = 15.0) -> dict:
    """Run (or resume) the whole demo in `out`; prints the table; returns summary.json's content."""
    out = out.resolve()
    summary = write_summary(out, run_stages(out, config, STAGES, restart, heartbeat))
    table = (out / "eval" / "metrics.md").read_text()
    print("\n" + table.split("\n\n")[0] + "\n")
    print(f"summary: {out / 'summary.json'}  plot: {out / 'eval' / 'metrics.png'}  "
          f"edits: {out / 'edit_telemetry.json'}  curves: {out / 'reward_curves.png'}")
    print(f"wall time of the stages: {summary['wall_seconds']:.0f} s (CPU time {summary['cpu_seconds']:.0f} s)")
    return summary


def profile(name: str, **overrides) -> DemoConfig:
    if name not in PROFILES:
        raise DemoError(f"unknown demo profile {name!r}; choose from {sorted(PROFILES)}")
    return replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})
