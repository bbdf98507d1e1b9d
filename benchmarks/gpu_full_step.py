"""Part 2 of the GPU check: seconds per GRPO step, EditGRPO vs Dr.GRPO, in real `swift rlhf` on a full-size model.

A Qwen2.5-VL-3B architecture with random weights (`QWEN25_VL_3B`, built here from the
published config, no download; tokenizer, processor and output-layer shaping are the tiny
model's, `swift_plugins/editgrpo/tiny/model.py`), bf16, transformers generation (vLLM does
not travel), the real scorers and the RaTE analyzer on random weights (the models dir of
`benchmarks/rewards.py`), IU-XRay studies with generated images at the recipe's resolution.
EditGRPO runs first, then Dr.GRPO with identical settings (only EDITGRPO_EDITS differs), each
with its own time limit: a run cut short still reports the steps it logged.

Per run, each optimizer step's first one dropped (warm-up): swift's `step_time` (generation,
edits, rewards, log-probs, loss, optimizer), `editgrpo/hook_seconds` (the edit hook: gather,
analysis, edits, re-tokenisation), and two timers this file adds when swift loads it as a
plugin (`--external_plugins benchmarks/gpu_full_step.py`): `bench/generate_seconds` (swift's
rollout) and `bench/reward_seconds` (all reward functions); peak memory is swift's
`memory(GiB)` (max reserved). Goal: hook <= 3 % of the step.

    python benchmarks/gpu_full_step.py --models-dir DIR --out results.md       # the GPU check (benchmarks/gpu_check.sh)
    python benchmarks/gpu_full_step.py --size tiny --device cpu --models-dir DIR --prompts 2 --steps 2 --max-new 16
"""
from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
# benchmarks/rewards.py must not shadow the `rewards` package (swift puts this folder first on sys.path)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

# Qwen/Qwen2.5-VL-3B-Instruct's config.json as published on the Hugging Face hub (text: hidden
# 2048, 36 layers, 16 heads of 128, 2 kv heads, MLP 11008, vocab 151,936, rope theta 1e6,
# M-RoPE sections 16/24/24 = head_dim / 2; vision: 32 blocks of 1280 with 16 heads, MLP 3420,
# window attention (112 px) except blocks 7/15/23/31, merger to 2048). One deliberate change:
# untied input/output embeddings, as the tiny model whose config the full one starts from (a tied
# random model repeats its last token, and the output layer is shaped to sample sub-words): the
# same matrix work per token, +311 M trained parameters (4.07 B instead of 3.75 B). Vocabulary,
# special ids and everything else are the tiny checkpoint's (`full_config`), the embedding rows
# Qwen's 151,936 (those above the tokenizer's ids are never sampled, as Qwen's own padding rows).
QWEN25_VL_3B: dict = {
    "text_config": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 128000,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": 70,
        "attention_dropout": 0.0,
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "hidden_act": "silu",
        "in_channels": 3,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    },
}
# run/images.sh: the paper's image resolution (qwen_vl_utils resizes each view into this range)
RECIPE_MAX_PIXELS, RECIPE_MIN_PIXELS = 401408, 262144
QWEN_VOCAB_ROWS = 151936  # Qwen2.5-VL's embedding rows (rows above the tokenizer's ids are padding)
STOPPED: list[int] = []  # SIGTERM received (the outer `timeout`): no further run starts
CONFIGS: tuple[tuple[str, str], ...] = (("EditGRPO", "on"), ("Dr.GRPO", "off"))


def full_config(tiny: Path):
    """The tiny checkpoint's config (vocabulary, special ids, untied embeddings) at the 3B sizes."""
    from transformers import Qwen2_5_VLConfig

    config = json.loads((tiny / "config.json").read_text())
    text = config["text_config"]
    text.pop("layer_types", None)  # one per layer: rebuilt for 36
    text.update(QWEN25_VL_3B["text_config"])
    text["vocab_size"] = max(text["vocab_size"], QWEN_VOCAB_ROWS)
    config["vision_config"].update(QWEN25_VL_3B["vision_config"])
    config["dtype"] = "bfloat16"
    return Qwen2_5_VLConfig.from_dict(config)


def build_policy(out: Path, size: str, device: str) -> tuple[Path, float]:
    """The policy checkpoint under `out`: the tiny model itself (`size` tiny), or its tokenizer, processor and
    config at the 3B sizes with random bf16 weights initialised on `device`; (dir, parameters in billions)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from swift_plugins.editgrpo.tiny.model import SEED, build_tiny_model, shape_output_layer

    tiny = build_tiny_model(out / "tiny")
    if size == "tiny":
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny)
        return tiny, sum(p.numel() for p in model.parameters()) / 1e9
    full = out / "full"
    full.mkdir(parents=True, exist_ok=True)
    for path in tiny.iterdir():  # tokenizer, processor, chat template: all but the weights and the model config
        if path.is_file() and not path.name.startswith(("model", "config.json")):
            shutil.copy2(path, full / path.name)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    n_bpe = tokenizer.convert_tokens_to_ids("<|endoftext|>")  # the special tokens follow the BPE sub-words
    torch.manual_seed(SEED)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(full_config(tiny), dtype=torch.bfloat16)
    shape_output_layer(model, n_bpe, tokenizer.convert_tokens_to_ids("<|im_end|>"))
    model.generation_config = GenerationConfig.from_pretrained(tiny)
    model.save_pretrained(full)
    billions = sum(p.numel() for p in model.parameters()) / 1e9
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return full, billions


def build_scorer_models(models_dir: Path, size: str) -> None:
    """Random-weight CheXbert, RadGraph-XL, RaTE-NER and BioLORD (skipped where benchmarks/rewards.py built them)."""
    from datasets_registry.iu_xray import read_findings
    from rewards.testing import build_all_missing

    build_all_missing(models_dir, read_findings()[:2000], size)


def swift_argv(model: Path, dataset: Path, out: Path, edits: str, args: argparse.Namespace) -> tuple[list[str], dict]:
    """The recipe's GRPO flags (run/rl_common.sh) around swift_run's, HF generation; only EDITGRPO_EDITS differs."""
    from swift_plugins.editgrpo.tiny.swift_run import grpo_args, swift_command

    rollouts = args.prompts * args.generations
    micro = args.micro_batch or rollouts
    if rollouts % micro:
        raise SystemExit(f"--micro-batch {micro} does not divide {rollouts} rollouts per step")
    flags = grpo_args(dataset, args.generations, args.prompts, args.max_new, args.steps)
    flags += ["--per_device_train_batch_size", str(micro), "--gradient_accumulation_steps", str(rollouts // micro),
              "--num_iterations", "1", "--learning_rate", "1e-6", "--lr_scheduler_type", "constant",
              "--warmup_ratio", "0", "--weight_decay", "0.01", "--epsilon", "0.2",
              "--torch_dtype", "bfloat16" if args.size == "full" else "float32",
              "--gradient_checkpointing", "true" if args.size == "full" else "false", "--seed", "0"]
    pixels = args.image_size * args.image_size
    env = {"EDITGRPO_EDITS": edits, "EDITGRPO_ANALYZER": args.analyzer, "EDITGRPO_REWARD_BACKEND": args.reward_backend,
           "EDITGRPO_MODELS_DIR": str(args.models_dir), "EDITGRPO_DEVICE": args.device,
           "EDITGRPO_REWARD_DTYPE": args.dtype, "EDITGRPO_BATCH_SIZE": "32",
           "MAX_PIXELS": str(RECIPE_MAX_PIXELS if args.size == "full" else pixels),
           "MIN_PIXELS": str(RECIPE_MIN_PIXELS if args.size == "full" else pixels),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        flags += ["--use_cpu", "true"]
    argv, environment = swift_command("rlhf", model, out, flags, env=env)
    argv.insert(argv.index("--external_plugins") + 2, str(Path(__file__).resolve()))  # this file's timers
    if not os.access(argv[0], os.X_OK):  # wheels installed with --target: no console script beside python
        argv[:1] = [sys.executable, "-m", "swift.cli.main"]
    return argv, environment


def run_swift(argv: list[str], env: dict, out: Path, timeout: float) -> tuple[str, float]:
    """(status, wall seconds); stdout/stderr to out/swift.log; killed (with its children) at `timeout`."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out / "swift.log", "w") as log:
        # its own process group (not session): killed whole at the limit, or with us (SIGTERM from `timeout`)
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, process_group=0)

        def stop(signum, frame):
            STOPPED.append(signum)
            os.killpg(process.pid, signal.SIGKILL)

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            status = "ok" if process.wait(timeout=max(timeout, 1)) == 0 else f"failed (exit {process.returncode})"
            if STOPPED:
                status = f"stopped by signal {STOPPED[0]}"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = f"cut at {timeout:.0f} s"
        finally:
            signal.signal(signal.SIGTERM, previous)
    return status, time.perf_counter() - start


def logged(out: Path) -> list[dict]:
    """The optimizer steps swift logged (logging.jsonl rows with a loss), also of a run cut short."""
    paths = sorted(out.glob("v*-*/logging.jsonl"), key=lambda p: p.stat().st_mtime)
    if not paths:
        return []
    rows = []
    for line in paths[-1].read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if "loss" in row and "step_time" in row:
            rows.append(row)
    return rows


def summarise(steps: list[dict]) -> dict[str, float]:
    """Means over the timed steps (the first logged step dropped: warm-up), peak memory over all."""
    from swift_plugins.editgrpo.tiny.swift_run import step_stats

    timed = steps[1:]
    mean = lambda key: statistics.mean(float(s.get(key, 0.0)) for s in timed)  # noqa: E731
    return {"timed": len(timed), **step_stats(timed),
            "hook": mean("editgrpo/hook_seconds"), "generate": mean("bench/generate_seconds"),
            "reward": mean("bench/reward_seconds"), "edited": mean("editgrpo/edited_fraction"),
            "completion": mean("completions/mean_length"),
            "memory": max(float(s.get("memory(GiB)", 0.0)) for s in steps)}


def report(args: argparse.Namespace, header: str, runs: dict[str, tuple[str, float, list[dict]]]) -> str:
    lines = [header, "",
             "| run | status (wall s) | timed steps | step s (sd) | vs Dr.GRPO | generation s | reward s | "
             "edit hook s | hook % of step | edited | completion tokens | peak GiB (reserved) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    results = {name: summarise(steps) for name, (_, _, steps) in runs.items() if len(steps) >= 2}
    base = results.get("Dr.GRPO", {}).get("step")
    for name, (status, wall, steps) in runs.items():
        if name not in results:
            lines.append(f"| {name} | {status} ({wall:.0f}) | {max(len(steps) - 1, 0)} | - | - | - | - | - | - | - | - | - |")
            continue
        r = results[name]
        versus = f"{r['step'] / base - 1:+.1%}" if base else "-"
        lines.append(f"| {name} | {status} ({wall:.0f}) | {r['timed']} | {r['step']:.2f} ({r['step_sd']:.2f}) | {versus} "
                     f"| {r['generate']:.2f} | {r['reward']:.3f} | {r['hook']:.3f} | {r['hook'] / r['step']:.2%} "
                     f"| {r['edited']:.2f} | {r['completion']:.0f} | {r['memory']:.1f} |")
    if "EditGRPO" in results:
        share = results["EditGRPO"]["hook"] / results["EditGRPO"]["step"]
        lines += ["", f"goal: edit hook (gather + analysis + edits + re-tokenisation) <= 3 % of the step: "
                      f"{share:.2%} ({'met' if share <= 0.03 else 'NOT met'})"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="policy size (tiny: the dry run)")
    parser.add_argument("--device", default="cuda", help="cuda or cpu (the policy's init and the scorers')")
    parser.add_argument("--dtype", default="bfloat16", help="the scorers' and the analyzer's dtype")
    parser.add_argument("--prompts", type=int, default=8, help="prompts (groups) per optimizer step")
    parser.add_argument("--generations", type=int, default=5, help="G")
    parser.add_argument("--max-new", type=int, default=128, help="max_completion_length")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run (the first is dropped)")
    parser.add_argument("--micro-batch", type=int, default=None, help="rollouts per forward/backward (default: all)")
    parser.add_argument("--image-size", type=int, default=512, help="side of the generated views, px (full: qwen_vl_utils resizes them into the recipe's pixel range)")
    parser.add_argument("--analyzer", default="rate", help="EDITGRPO_ANALYZER (rate or lexicon)")
    parser.add_argument("--reward-backend", default="real", help="EDITGRPO_REWARD_BACKEND (real or rules)")
    parser.add_argument("--models-dir", type=Path, required=True, help="scorer models (built here when missing)")
    parser.add_argument("--scorer-size", choices=("base", "tiny"), default=None, help="default: base, tiny with --size tiny")
    parser.add_argument("--work", type=Path, default=Path("/tmp/editgrpo-gpu-full-step"), help="checkpoint, data and run dirs (replaced)")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds for everything; each run gets its share")
    parser.add_argument("--out", type=Path, default=None, help="results (markdown), also printed")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first is dropped)")
    deadline = time.monotonic() + args.budget

    start = time.perf_counter()
    for name in ("model", "data", *(name.replace(".", "") for name, _ in CONFIGS)):  # this script's, from an earlier run
        shutil.rmtree(args.work / name, ignore_errors=True)
    build_scorer_models(args.models_dir, args.scorer_size or ("tiny" if args.size == "tiny" else "base"))
    scorers_s = time.perf_counter() - start
    start = time.perf_counter()
    model, billions = build_policy(args.work / "model", args.size, args.device)
    policy_s = time.perf_counter() - start
    from swift_plugins.editgrpo.tiny.swift_run import write_iu_dataset

    dataset = write_iu_dataset(args.work / "data", args.prompts * args.steps, image_size=args.image_size)

    import torch
    import transformers

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") and torch.cuda.is_available() else "CPU"
    header = (f"swift rlhf --rlhf_type grpo, {args.size} Qwen2.5-VL ({billions * 1e3:,.1f} M parameters, random), {device}, "
              f"{'bf16' if args.size == 'full' else 'fp32'}, transformers generation; {args.prompts} prompts x G = "
              f"{args.generations}, {args.max_new} new tokens max, micro-batch {args.micro_batch or args.prompts * args.generations}, "
              f"two {args.image_size} px views per study; analyzer {args.analyzer}, rewards {args.reward_backend} "
              f"({args.dtype}); {args.steps} steps per run, the first dropped; torch {torch.__version__}, "
              f"transformers {transformers.__version__}\n"
              f"(built: scorer models {scorers_s:.0f} s, policy {policy_s:.0f} s)")
    runs: dict[str, tuple[str, float, list[dict]]] = {}
    for index, (name, edits) in enumerate(CONFIGS):
        share = (deadline - time.monotonic()) / (len(CONFIGS) - index)
        out = args.work / name.replace(".", "")
        argv, env = swift_argv(model, dataset, out, edits, args)
        status, wall = run_swift(argv, env, out, share)
        runs[name] = (status, wall, logged(out))
        if not status == "ok":
            print(f"--- {name}: {status}; the end of {out / 'swift.log'}:", file=sys.stderr)
            print((out / "swift.log").read_text()[-3000:], file=sys.stderr)
        text = report(args, header, runs)  # written after each run: a later cut keeps this one
        if args.out:
            args.out.write_text(text)
        if STOPPED:
            break
    print(text)
    return 0 if all(len(steps) >= 2 for _, _, steps in runs.values()) else 1


def _install_timers() -> None:
    """Loaded by swift as a plugin: time swift's rollout and reward scoring into the step's metrics."""
    import functools

    import torch
    from swift.rlhf_trainers import GRPOTrainer

    def timed(method, key: str):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            start = time.perf_counter()
            result = method(self, *args, **kwargs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self._metrics["train" if self.model.training else "eval"][key].append(time.perf_counter() - start)
            return result

        return wrapper

    GRPOTrainer._generate_completions = timed(GRPOTrainer._generate_completions, "bench/generate_seconds")
    GRPOTrainer._compute_rewards_per_func = timed(GRPOTrainer._compute_rewards_per_func, "bench/reward_seconds")


if __name__ == "__main__":
    sys.exit(main())
elif __name__.startswith("_swift_external_"):
    _install_timers()
