"""The embedded CPU demo: synthetic data → tiny model → SFT → EditGRPO / Dr.GRPO → infer → eval.

Every training/inference stage runs the project's own recipes (`run/sft.sh`, `run/editgrpo.sh`,
`run/grpo_baseline.sh`, `run/infer.sh`, `run/evaluate.sh`) with CPU-sized settings, so the demo
also proves the recipes work end to end. Both RL runs start from the same SFT checkpoint with
the same seed, step budget and flags; the only difference is `EDITGRPO_EDITS`.

Re-running is safe: each stage writes a marker with a fingerprint of everything it depends on
(its settings, chained with the fingerprint of the stage before). A stage is reused only if
its marker matches and every earlier stage was reused; otherwise its outputs are wiped and it
runs again, and so does every later stage. So an interrupted run resumes at the unfinished
stage, a changed setting redoes the stages it affects (e.g. more GRPO steps keep the SFT
checkpoint), and one directory never mixes results of two configurations. `restart=True`
starts over from scratch.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = REPO_ROOT / "run"
PIPELINE_VERSION = 1  # bump when stage commands change: old output dirs then restart cleanly
RUN_FILE = "demo_run.json"
STAGE_DIR = ".stages"
METHODS = ("sft", "drgrpo", "editgrpo")
DATASET = "cxr-synthetic"  # run/common.sh preset; files in $EDITGRPO_DATA_DIR/cxr_synthetic/
# Image budget of the tiny model: 112x112 px = 16 visual tokens per view.
MAX_PIXELS, MIN_PIXELS = 112 * 112, 56 * 56


class DemoError(RuntimeError):
    """A stage failed or the output directory cannot be used; the message says which and why."""


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
    rl_steps: int = 16
    rl_prompts_per_step: int = 4
    num_generations: int = 4
    rl_lr: float = 5e-5  # 2e-4 made both RL runs fall below SFT
    edit_match: str = "affinity"  # EDITGRPO_MATCH of the EditGRPO run (affinity = reference code, paper)
    beta: float = 0.0  # no reference model on CPU: the KL term's forward pass is a third of a step
    temperature: float = 1.0
    max_completion_length: int = 64
    infer_max_new_tokens: int = 80

    def fingerprint(self) -> str:
        return _digest({"version": PIPELINE_VERSION, **asdict(self)})


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


PROFILES: dict[str, DemoConfig] = {
    "full": DemoConfig(),
    # a few steps of everything: the end-to-end test (minutes on 2 cores)
    "quick": DemoConfig(
        n_train=24, n_test=6, sft_steps=4, sft_batch=4, rl_steps=2, rl_prompts_per_step=2,
        num_generations=2, max_completion_length=24, infer_max_new_tokens=24,
    ),
}


# ----------------------------------------------------------------------------- running commands

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
        MAX_PIXELS=str(MAX_PIXELS),
        MIN_PIXELS=str(MIN_PIXELS),
        EDITGRPO_DATA_DIR=str(out / "data"),
        EDITGRPO_REWARD_BACKEND="rules",
        EDITGRPO_ANALYZER="lexicon",
        EDITGRPO_SEED=str(config.seed),
    )
    return env


_PROGRESS_RE = re.compile(r"(Train|Infer|Map|Evaluat|Scor|\d+%\|)")
_REWARD_RE = re.compile(r"'reward': '([-0-9.e]+)'")


def progress_line(log_tail: str) -> str:
    """The latest progress-bar fragment of a log (tqdm writes \\r-separated updates), plus the
    latest GRPO reward when there is one."""
    pieces = [p.strip() for p in re.split(r"[\r\n]", log_tail) if p.strip()]
    status = next((p for p in reversed(pieces) if _PROGRESS_RE.search(p)), pieces[-1] if pieces else "")
    rewards = _REWARD_RE.findall(log_tail)
    if rewards:
        status += f"  reward={float(rewards[-1]):.3f}"
    return status[-160:]


def _tail(path: Path, size: int = 8192) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")


def run_logged(cmd: list[str], env: dict[str, str], log_path: Path, label: str, heartbeat: float) -> None:
    """Run `cmd` with its output in `log_path`, printing a progress line every `heartbeat` s.

    On Ctrl-C / SIGTERM the whole process group is stopped before the exception propagates,
    so no swift worker outlives the demo."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True)
        last = ""
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=heartbeat)
                    break
                except subprocess.TimeoutExpired:
                    line = progress_line(_tail(log_path))
                    if line and line != last:
                        print(f"    [{label}] {line}", flush=True)
                        last = line
        except BaseException:
            _stop(proc)
            raise
    if returncode != 0:
        tail = "\n".join(_tail(log_path, 3000).splitlines()[-15:])
        raise DemoError(f"{label} failed (exit {returncode}); full log: {log_path}\n{tail}")


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


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
        """The final checkpoint of a training stage (swift's highest checkpoint-N)."""
        found = sorted((self.out / method).glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
        if not found:
            raise DemoError(f"no checkpoint under {self.out / method}")
        return found[-1]

    def result(self, method: str) -> Path:
        return self.out / "infer" / f"{method}.jsonl"

    def recipe(self, script: str, args: list[str], label: str, env: dict[str, str] | None = None) -> None:
        run_logged(["bash", str(RUN_DIR / script), *args], {**self.env, **(env or {})},
                   self.log_dir / f"{label}.log", label, self.heartbeat)


def _stage_data(ctx: Context) -> None:
    from datasets_registry.synthetic_cxr import generate

    paths = generate(ctx.data_dir, ctx.config.n_train, ctx.config.n_test, seed=ctx.config.seed)
    reports = [json.loads(line)["solution"] for line in paths.train.read_text().splitlines()]
    (ctx.out / "data" / "corpus.txt").write_text("\n".join(reports) + "\n", encoding="utf-8")
    print(f"    {ctx.config.n_train} train / {ctx.config.n_test} test studies in {ctx.data_dir}", flush=True)


def _stage_tiny_model(ctx: Context) -> None:
    cmd = [sys.executable, "-m", "swift_plugins.editgrpo.cli", "tiny-model", str(ctx.out / "tiny_model"),
           "--corpus", str(ctx.out / "data" / "corpus.txt")]
    run_logged(cmd, ctx.env, ctx.log_dir / "tiny_model.log", "tiny_model", ctx.heartbeat)


def _cpu_train_env(ctx: Context) -> dict[str, str]:
    """run/common.sh overrides: tiny model, fp32 on CPU, no DeepSpeed, trainable vision tower
    (the tiny one is random, unlike Qwen2.5-VL's)."""
    return {
        "DATASET": DATASET,
        "BASE_MODEL": str(ctx.out / "tiny_model"),
        "TEMPLATE": "qwen2_5_vl_cxr",
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


def _rl_stage(method: str) -> Callable[[Context], None]:
    script = {"editgrpo": "editgrpo.sh", "drgrpo": "grpo_baseline.sh"}[method]

    def stage(ctx: Context) -> None:
        c = ctx.config
        env = {
            **_cpu_train_env(ctx),
            "SFT_CHECKPOINT": str(ctx.checkpoint("sft")),
            "OUTPUT_DIR": str(ctx.out / method),
            "USE_VLLM": "false",
            "NUM_GENERATIONS": str(c.num_generations),
            "PROMPTS_PER_STEP": str(c.rl_prompts_per_step),
            "PER_DEVICE_BATCH": str(c.rl_prompts_per_step * c.num_generations),
            "RL_LR": str(c.rl_lr),
            "RL_MAX_STEPS": str(c.rl_steps),
            "BETA": str(c.beta),
            "TEMPERATURE": str(c.temperature),
            "MAX_COMPLETION_LENGTH": str(c.max_completion_length),
            "EDITGRPO_MATCH": c.edit_match,
        }
        ctx.recipe(script, ["--save_strategy", "steps", "--save_steps", str(c.rl_steps),
                            "--seed", str(c.seed), "--data_seed", str(c.seed)], method, env)

    return stage


def _infer_stage(method: str) -> Callable[[Context], None]:
    def stage(ctx: Context) -> None:
        args = ["--model", str(ctx.checkpoint(method)), "--data", str(ctx.data_dir / "test.jsonl"),
                "--out", str(ctx.result(method))]
        env = {"MAX_NEW_TOKENS": str(ctx.config.infer_max_new_tokens), "MAX_BATCH_SIZE": "16",
               "TEMPLATE": "qwen2_5_vl_cxr", "OVERWRITE": "1"}
        ctx.recipe("infer.sh", args, f"infer_{method}", env)

    return stage


def _stage_eval(ctx: Context) -> None:
    args = ["--out", str(ctx.out / "eval"), *(str(ctx.result(m)) for m in METHODS),
            "--names", ",".join(METHODS), "--metrics", "chexbert,radgraph,ratescore,bleu4,rouge_l"]
    ctx.recipe("evaluate.sh", args, "eval", {"BACKEND": "rules"})


@dataclass(frozen=True)
class Stage:
    name: str
    outputs: tuple[str, ...]  # paths under the output dir, removed before the stage (re)runs
    run: Callable[[Context], None]
    settings: tuple[str, ...] = ()  # DemoConfig fields the stage's result depends on

    def fingerprint(self, config: DemoConfig, previous: str) -> str:
        return _digest({"version": PIPELINE_VERSION, "stage": self.name, "after": previous,
                        **{name: getattr(config, name) for name in self.settings}})


RL_SETTINGS = ("rl_steps", "rl_prompts_per_step", "num_generations", "rl_lr", "beta", "temperature",
               "max_completion_length", "seed")
STAGES: tuple[Stage, ...] = (
    Stage("data", ("data",), _stage_data, ("n_train", "n_test", "seed")),
    Stage("tiny_model", ("tiny_model",), _stage_tiny_model),
    Stage("sft", ("sft",), _stage_sft, ("sft_steps", "sft_batch", "sft_lr", "seed")),
    Stage("editgrpo", ("editgrpo",), _rl_stage("editgrpo"), (*RL_SETTINGS, "edit_match")),
    Stage("drgrpo", ("drgrpo",), _rl_stage("drgrpo"), RL_SETTINGS),
    *(Stage(f"infer_{m}", (f"infer/{m}.jsonl", f"infer/{m}.settings.json"), _infer_stage(m), ("infer_max_new_tokens",))
      for m in METHODS),
    Stage("eval", ("eval",), _stage_eval),
)


# ----------------------------------------------------------------------------- output directory

@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One demo per output directory at a time."""
    out.mkdir(parents=True, exist_ok=True)
    handle = (out / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DemoError(f"{out} is in use by another demo run") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def prepare_output(out: Path, config: DemoConfig, restart: bool) -> None:
    """Claim `out` for the demo. A directory with other content is never touched; with
    `restart`, everything the demo wrote is removed first."""
    run_file = out / RUN_FILE
    entries = [p for p in out.iterdir() if p.name != ".lock"] if out.exists() else []
    if entries and not run_file.exists():
        raise DemoError(f"{out} exists and is not a demo output directory ({RUN_FILE} missing); "
                        "choose another --out or remove it")
    if restart and entries:
        print(f"==> {out}: --restart; starting over", flush=True)
        for entry in entries:
            _remove(entry)
    out.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps({"fingerprint": config.fingerprint(), "version": PIPELINE_VERSION,
                                    "config": asdict(config)}, indent=2) + "\n")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ----------------------------------------------------------------------------- summary

def read_logging(run_dir: Path) -> list[dict]:
    """swift's per-step metrics (logging.jsonl) of a training run."""
    path = run_dir / "logging.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if "reward" in row or "loss" in row]


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


# ----------------------------------------------------------------------------- entry point

def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children: unlike wall time,
    it does not grow when other jobs share the cores."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_stages(out: Path, config: DemoConfig, stages: tuple[Stage, ...] = STAGES, restart: bool = False,
               heartbeat: float = 15.0) -> dict[str, dict[str, float]]:
    """Run the stages not finished yet in `out` (all of them after a restart or config change);
    returns every stage's recorded {"seconds": wall, "cpu_seconds": cpu}."""
    with _locked(out):
        prepare_output(out, config, restart)
        ctx = Context(config, out, clean_env(config, out), heartbeat)
        markers = out / STAGE_DIR
        markers.mkdir(exist_ok=True)
        timings: dict[str, dict[str, float]] = {}
        reusing, fingerprint = True, ""
        print(f"==> EditGRPO demo in {out} (config {config.fingerprint()})", flush=True)
        for number, stage in enumerate(stages, start=1):
            marker = markers / f"{stage.name}.json"
            fingerprint = stage.fingerprint(config, fingerprint)
            recorded = json.loads(marker.read_text()) if marker.exists() else {}
            if reusing and recorded.get("fingerprint") == fingerprint:
                timings[stage.name] = {k: recorded[k] for k in ("seconds", "cpu_seconds")}
                print(f"[{number}/{len(stages)}] {stage.name}: done earlier ({recorded['seconds']:.0f} s)", flush=True)
                continue
            if recorded:
                print(f"    {stage.name}: {'settings changed' if reusing else 'an earlier stage was redone'}; "
                      "redoing it", flush=True)
            reusing = False  # everything after a (re)run stage is redone too
            _remove(marker)
            for output in stage.outputs:
                _remove(out / output)
            print(f"[{number}/{len(stages)}] {stage.name} ...", flush=True)
            start, cpu_start = time.monotonic(), _cpu_seconds()
            stage.run(ctx)
            timings[stage.name] = {"seconds": time.monotonic() - start, "cpu_seconds": _cpu_seconds() - cpu_start}
            marker.write_text(json.dumps({**timings[stage.name], "fingerprint": fingerprint}) + "\n")
            print(f"[{number}/{len(stages)}] {stage.name}: {timings[stage.name]['seconds']:.0f} s "
                  f"(cpu {timings[stage.name]['cpu_seconds']:.0f} s)", flush=True)
    return timings


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
