"""The run/ recipes: bash syntax, and every command they build parses with the program's own
argument parser — ms-swift's argument dataclasses for `swift ...` (only their argparse layer runs,
no model is loaded), editgrpo's CLI for `editgrpo ...`. No GPU needed.

Recipes built on run/common.sh print their command under DRY_RUN=1; the others are run with a
stand-in `swift`/`editgrpo` executable that records its argv.
"""
from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN = REPO_ROOT / "run"
RECIPES = sorted(RUN.glob("*.sh"))
DATASETS = {"mimic-cxr": 2, "rexgradient": 1, "iu-xray": 1, "padchest-gr": 2}  # SFT epochs (docs/algorithm.md §8)


@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.name)
def test_bash_syntax(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- helpers

SWIFT_CLASSES = {"sft": "SftArguments", "rlhf": "RLHFArguments", "infer": "InferArguments",
                 "rollout": "RolloutArguments", "deploy": "DeployArguments"}


@pytest.fixture(scope="module")
def swift_parsers():
    """One parser per swift sub-command, built as `swift.utils.parse_args` builds it."""
    import swift.arguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    parsers = {}
    for sub, class_name in SWIFT_CLASSES.items():
        with _patch_get_type_hints():
            parsers[sub] = HfArgumentParser([getattr(swift.arguments, class_name)])
    return parsers


@dataclass
class Command:
    env: dict[str, str]
    program: str
    args: list[str]

    def flag(self, name: str) -> str:
        """The last value given to --name (argparse semantics: the last one wins)."""
        values = [self.args[i + 1] for i, a in enumerate(self.args[:-1]) if a == f"--{name}"]
        assert values, f"--{name} missing from {self.program} {' '.join(self.args)}"
        return values[-1]


def parse_line(line: str) -> Command:
    tokens = shlex.split(line)
    env = {}
    while tokens and "=" in tokens[0] and not tokens[0].startswith("-"):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    return Command(env, tokens[0], tokens[1:])


def recipe_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without settings that would leak into the recipes."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith("EDITGRPO_") and k not in ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR",
                                                          "MASTER_PORT", "MAX_PIXELS", "MIN_PIXELS", "DRY_RUN", "CUDA_VISIBLE_DEVICES")}
    return {**keep, "PATH": f"{Path(sys.executable).parent}:{keep.get('PATH', '')}", **overrides}


def dry_run(script: str, *args: str, **env: str) -> list[Command]:
    result = subprocess.run(["bash", str(RUN / script), *args], env=recipe_env(DRY_RUN="1", **env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [parse_line(line) for line in result.stdout.splitlines() if line.strip()]


def validate_swift(parsers, command: Command):
    """Parse with swift's parser: unknown flags, bad choices and bad types all fail here."""
    assert command.program == "swift"
    sub, args = command.args[0], command.args[1:]
    errors = io.StringIO()
    with redirect_stderr(errors):
        try:
            namespace, unknown = parsers[sub].parse_known_args(args)
        except SystemExit:
            pytest.fail(f"swift {sub} rejects the recipe's arguments: {errors.getvalue()[-600:]}")
    assert unknown == [], f"flags unknown to swift {sub}: {unknown}"
    return namespace


def stand_in(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """An executable that records its argv (one json list per call) and, for `infer`, writes one
    result row to --result_path as swift would."""
    record = tmp_path / f"{name}.argv.jsonl"
    exe = tmp_path / "bin" / name
    exe.parent.mkdir(exist_ok=True)
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "args = sys.argv[1:]\n"
        "if '--result_path' in args:\n"
        "    open(args[args.index('--result_path') + 1], 'w').write(json.dumps({'response': 'x'}) + '\\n')\n"
    )
    exe.chmod(0o755)
    return exe, record


def recorded(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


# ----------------------------------------------------------------------------- run/sft.sh

@pytest.mark.parametrize("dataset, epochs", DATASETS.items())
def test_sft_recipe_per_dataset(swift_parsers, dataset, epochs):
    (command,) = dry_run("sft.sh", DATASET=dataset, NPROC_PER_NODE="8")
    ns = validate_swift(swift_parsers, command)
    assert ns.model.endswith("Qwen2.5-VL-3B-Instruct")
    assert ns.dataset == [f"{dataset.replace('-', '_')}_editgrpo"]
    assert ns.num_train_epochs == epochs
    assert ns.freeze_vit is True and ns.torch_dtype == "bfloat16" and ns.tuner_type == "full"
    assert ns.template == "qwen2_5_vl_cxr" and ns.deepspeed == "zero2"
    assert ns.external_plugins == [str(REPO_ROOT / "swift_plugins" / "editgrpo" / "plugin.py")]
    assert (command.env["MAX_PIXELS"], command.env["MIN_PIXELS"]) == ("401408", "262144")
    assert ns.per_device_train_batch_size * ns.gradient_accumulation_steps * 8 == 32


def test_gpu_count_follows_cuda_visible_devices(swift_parsers):
    (command,) = dry_run("sft.sh", DATASET="iu-xray", CUDA_VISIBLE_DEVICES="0,3")
    ns = validate_swift(swift_parsers, command)
    assert command.env["NPROC_PER_NODE"] == "2"
    assert ns.per_device_train_batch_size * ns.gradient_accumulation_steps * 2 == 32


@pytest.mark.parametrize("nodes, gpus", [(1, 4), (1, 8), (2, 8), (4, 8)])
def test_sft_recipe_topologies_keep_the_global_batch(swift_parsers, nodes, gpus):
    env = {"NPROC_PER_NODE": str(gpus), "NNODES": str(nodes), "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1",
           "MASTER_PORT": "29500", "DEEPSPEED": "zero3"}
    (command,) = dry_run("sft.sh", **env)
    ns = validate_swift(swift_parsers, command)
    assert ns.deepspeed == "zero3"
    assert ns.per_device_train_batch_size * ns.gradient_accumulation_steps * gpus * nodes == 32
    for key, value in env.items():  # swift launches torchrun from these
        if key != "DEEPSPEED":
            assert command.env[key] == value


def test_sft_recipe_passes_extra_flags_last(swift_parsers):
    (command,) = dry_run("sft.sh", "--learning_rate", "3e-5", "--max_steps", "7")
    ns = validate_swift(swift_parsers, command)
    assert (ns.learning_rate, ns.max_steps) == (3e-5, 7)


def test_sft_recipe_refuses_an_output_dir_with_checkpoints(tmp_path):
    (tmp_path / "checkpoint-10").mkdir()
    result = subprocess.run(["bash", str(RUN / "sft.sh")], env=recipe_env(OUTPUT_DIR=str(tmp_path)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "already holds checkpoints" in result.stderr


def test_unknown_dataset_is_refused():
    result = subprocess.run(["bash", str(RUN / "sft.sh")], env=recipe_env(DATASET="chexpert", DRY_RUN="1"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown DATASET=chexpert" in result.stderr


def test_indivisible_batch_is_refused():
    result = subprocess.run(["bash", str(RUN / "sft.sh")],
                            env=recipe_env(DRY_RUN="1", NPROC_PER_NODE="3", SFT_PER_DEVICE_BATCH="4"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not divisible" in result.stderr


def test_latest_checkpoint_is_numeric(tmp_path):
    run_root = tmp_path / "a-b"
    for step in (5, 40, 100):
        (run_root / f"checkpoint-{step}").mkdir(parents=True)
    result = subprocess.run(["bash", "-c", f"source {RUN / 'common.sh'}; latest_checkpoint {run_root}"],
                            env=recipe_env(), capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == str(run_root / "checkpoint-100")


# ----------------------------------------------------------------------------- infer / evaluate

def test_infer_recipe_builds_a_valid_swift_infer(swift_parsers, tmp_path):
    swift, record = stand_in(tmp_path, "swift")
    data = tmp_path / "test.jsonl"
    data.write_text("{}\n")
    out = tmp_path / "res" / "editgrpo.jsonl"
    result = subprocess.run(["bash", str(RUN / "infer.sh"), "--model", "/models/ckpt", "--data", str(data),
                             "--out", str(out)], env=recipe_env(SWIFT=str(swift)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (argv,) = recorded(record)
    ns = validate_swift(swift_parsers, Command({}, "swift", argv))
    assert ns.val_dataset == [str(data)] and ns.result_path == str(out) and ns.temperature == 0
    settings = json.loads(out.with_suffix(".settings.json").read_text())
    assert (settings["max_pixels"], settings["min_pixels"]) == ("401408", "262144")  # the training resolution
    vllm_out = out.with_name("vllm.jsonl")
    result = subprocess.run(["bash", str(RUN / "infer.sh"), "--model", "/models/ckpt", "--data", str(data),
                             "--out", str(vllm_out)], env=recipe_env(SWIFT=str(swift), INFER_BACKEND="vllm"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ns = validate_swift(swift_parsers, Command({}, "swift", recorded(record)[-1]))
    assert ns.infer_backend == "vllm" and "image" in str(ns.vllm_limit_mm_per_prompt)
    qwen3_out = out.with_name("qwen3_vl.jsonl")  # another family: its template, model type and pixel grid
    result = subprocess.run(["bash", str(RUN / "infer.sh"), "--model", "/models/ckpt", "--data", str(data),
                             "--out", str(qwen3_out)], env=recipe_env(SWIFT=str(swift), MODEL_FAMILY="qwen3_vl"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ns = validate_swift(swift_parsers, Command({}, "swift", recorded(record)[-1]))
    assert (ns.template, ns.model_type) == ("qwen3_vl_cxr", "qwen3_vl")
    settings = json.loads(qwen3_out.with_suffix(".settings.json").read_text())
    assert (settings["max_pixels"], settings["min_pixels"]) == ("524288", "342392")  # 512 / 334 tokens of 32 px
    result = subprocess.run(["bash", str(RUN / "infer.sh"), "--model", "/models/ckpt", "--data", str(data),
                             "--out", str(out.with_name("bad.jsonl"))],
                            env=recipe_env(SWIFT=str(swift), MODEL_FAMILY="llava"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "qwen2_5_vl" in result.stderr and len(recorded(record)) == 3


def test_evaluate_recipe_builds_a_valid_editgrpo_eval(tmp_path):
    from swift_plugins.editgrpo.cli import build_parser

    editgrpo, record = stand_in(tmp_path, "editgrpo")
    result = subprocess.run(["bash", str(RUN / "evaluate.sh"), "--out", str(tmp_path / "eval"), "a.jsonl", "b.jsonl",
                             "--names", "sft,editgrpo"], env=recipe_env(EDITGRPO=str(editgrpo), BACKEND="rules"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (argv,) = recorded(record)
    args = build_parser().parse_args(argv)
    assert (args.command, args.backend, args.results) == ("eval", "rules", ["a.jsonl", "b.jsonl"])


# ----------------------------------------------------------------------------- RL recipes

RL_STEPS = {"mimic-cxr": 1000, "rexgradient": 600, "iu-xray": None, "padchest-gr": None}  # None: one epoch


def _without_output_dir(command: Command) -> list[str]:
    args = list(command.args)
    index = args.index("--output_dir")
    return args[:index] + args[index + 2:]


@pytest.mark.parametrize("dataset", DATASETS)
def test_editgrpo_and_baseline_use_the_paper_settings(swift_parsers, dataset):
    (edit,) = dry_run("editgrpo.sh", DATASET=dataset, NPROC_PER_NODE="8")
    (base,) = dry_run("grpo_baseline.sh", DATASET=dataset, NPROC_PER_NODE="8")
    ns = validate_swift(swift_parsers, edit)
    validate_swift(swift_parsers, base)
    assert ns.rlhf_type == "grpo" and ns.reward_funcs == ["editgrpo_clinical"]
    assert (ns.num_generations, ns.temperature, ns.learning_rate, ns.weight_decay, ns.beta) == (5, 1.0, 1e-6, 0.01, 0.01)
    assert (ns.advantage_estimator, ns.scale_rewards, ns.loss_type) == ("grpo", "none", ["dr_grpo"])
    assert ns.lr_scheduler_type == "constant" and ns.num_iterations == 1 and ns.epsilon == 0.2
    assert ns.freeze_vit is True and ns.torch_dtype == "bfloat16"
    assert ns.per_device_train_batch_size * ns.gradient_accumulation_steps * 8 == 32 * 5  # 32 prompts per step
    assert ns.use_vllm is True and ns.vllm_mode == "colocate"
    assert (ns.max_steps, ns.num_train_epochs) == ((RL_STEPS[dataset], 3.0) if RL_STEPS[dataset] else (-1, 1.0))
    assert (edit.env["EDITGRPO_EDITS"], base.env["EDITGRPO_EDITS"]) == ("on", "off")
    assert edit.env["MAX_PIXELS"] == "401408" and edit.env["MIN_PIXELS"] == "262144"
    assert _without_output_dir(edit) == _without_output_dir(base)  # the edits are the only difference


@pytest.mark.parametrize("nodes, gpus, deepspeed", [(1, 4, "zero2"), (1, 8, "zero3"), (2, 8, "zero3"), (4, 8, "zero2")])
def test_rl_topologies_keep_32_prompts_per_step(swift_parsers, nodes, gpus, deepspeed):
    (command,) = dry_run("editgrpo.sh", NPROC_PER_NODE=str(gpus), NNODES=str(nodes), NODE_RANK="0",
                         MASTER_ADDR="10.0.0.1", MASTER_PORT="29500", DEEPSPEED=deepspeed)
    ns = validate_swift(swift_parsers, command)
    assert ns.per_device_train_batch_size * ns.gradient_accumulation_steps * gpus * nodes == 160
    assert ns.deepspeed == deepspeed and command.env["NNODES"] == str(nodes)


def test_vllm_server_mode(swift_parsers):
    lines = dry_run("paper.sh", VLLM_MODE="server", ROLLOUT_PORT="8123", NPROC_PER_NODE="4")
    rl = [validate_swift(swift_parsers, c) for c in lines if c.program == "swift" and c.args[0] == "rlhf"]
    assert len(rl) == 2
    for ns in rl:
        assert (ns.use_vllm, ns.vllm_mode, ns.vllm_server_host, ns.vllm_server_port) == (True, "server", ["127.0.0.1"], [8123])
    (server,) = dry_run("rollout_server.sh", ROLLOUT_PORT="8123", CUDA_VISIBLE_DEVICES="4,5,6,7")
    ns = validate_swift(swift_parsers, server)
    assert (ns.port, ns.vllm_data_parallel_size) == (8123, 4)
    assert "NPROC_PER_NODE" not in server.env


def test_paper_pipeline_chains_the_stages(swift_parsers):
    from swift_plugins.editgrpo.cli import build_parser

    lines = dry_run("paper.sh", DATASET="padchest-gr", NPROC_PER_NODE="8", VLLM_MODE="none")
    swift_lines = [c for c in lines if c.program == "swift"]
    assert [c.args[0] for c in swift_lines] == ["sft", "rlhf", "rlhf"]
    sft, edit, base = (validate_swift(swift_parsers, c) for c in swift_lines)
    assert edit.model.startswith(sft.output_dir) and base.model.startswith(sft.output_dir)
    assert edit.use_vllm is False and {edit.output_dir, base.output_dir} == {
        sft.output_dir.replace("/sft", "/editgrpo"), sft.output_dir.replace("/sft", "/drgrpo")}
    infers = [c for c in lines if c.program == "env" and "infer.sh" in c.args[1 + c.args.index("bash")]]
    assert [Command({}, "", c.args).flag("model").rsplit("/", 2)[1] for c in infers] == ["sft", "editgrpo", "drgrpo"]
    (evaluate,) = [c for c in lines if c.program == "bash" and c.args[0].endswith("evaluate.sh")]
    args = build_parser().parse_args(["eval", *evaluate.args[1:]])
    assert args.names == "sft,editgrpo,drgrpo" and len(args.results) == 3


# ----------------------------------------------------------------------------- gold-guided peers (run/peers.sh)

@pytest.mark.parametrize("method", ["rlsd", "sdar", "opd", "chord", "editgrpo+rlsd", "editgrpo+chord"])
def test_peer_recipes_add_only_their_flags_to_the_paper_settings(swift_parsers, method):
    from swift_plugins.editgrpo.peers import PEER_FLAGS, PEER_METHODS, resolve_method, teacher_signal

    assert method in PEER_METHODS
    (peer,) = dry_run("peers.sh", METHOD=method, DATASET="mimic-cxr", NPROC_PER_NODE="8")
    (base,) = dry_run("editgrpo.sh" if method.startswith("editgrpo+") else "grpo_baseline.sh",
                      DATASET="mimic-cxr", NPROC_PER_NODE="8")
    ns = validate_swift(swift_parsers, peer)
    run = resolve_method(method, "mimic_cxr_editgrpo")
    assert peer.env["EDITGRPO_EDITS"] == ("on" if method.startswith("editgrpo+") else "off") == base.env["EDITGRPO_EDITS"]
    assert _without_output_dir(peer) == _without_output_dir(base) + list(run.flags)  # the paper's settings, then the peer's
    assert peer.flag("output_dir").endswith("/" + method.replace("+", "_"))
    mechanism = method.removeprefix("editgrpo+")
    assert list(run.flags[:len(PEER_FLAGS[mechanism])]) == list(PEER_FLAGS[mechanism])
    assert teacher_signal(ns) == (None if mechanism == "chord" else mechanism)  # what the plugin's preflight reads
    if mechanism == "rlsd":
        assert (ns.advantage_reweight, ns.rlsd_lambda, ns.rlsd_reweight_clip_range) == ("rlsd", 0.5, 0.2)
    elif mechanism == "sdar":
        assert (ns.sdar_loss_coef, ns.sdar_gate_beta, ns.advantage_reweight) == (0.1, 5.0, None)
    elif mechanism == "opd":
        assert ns.teacher_kl_coef == 1.0
    else:
        assert ns.chord_sft_dataset == ["mimic_cxr_editgrpo"] == [ns.dataset[0]]  # SFT on the run's gold reports
        assert (ns.chord_sft_per_device_train_batch_size, ns.chord_mu_warmup_steps, ns.chord_mu_decay_steps,
                ns.chord_mu_peak, ns.chord_mu_valley) == (1, 0, 200, 0.9, 0.05)
    if mechanism != "opd":
        assert ns.teacher_kl_coef == 0  # the teacher_prompt column must not add OPD-RL's term


def test_paper_runs_switch_swifts_opd_term_off(swift_parsers):
    """The converted rows carry `teacher_prompt`; at swift's default teacher_kl_coef (1.0) that alone is OPD-RL."""
    for script in ("editgrpo.sh", "grpo_baseline.sh"):
        (command,) = dry_run(script)
        assert validate_swift(swift_parsers, command).teacher_kl_coef == 0


def test_peer_flags_pass_swifts_own_checks(swift_parsers):
    """Beyond parsing: each peer's values pass ms-swift's own validators (RLHFArguments._check_rlsd/_check_sdar),
    and the refusal `run/peers.sh` cites for RLSD + SDAR is swift's."""
    from types import SimpleNamespace

    from swift.arguments import RLHFArguments

    def checked(method: str, *extra: str) -> None:
        (command,) = dry_run("peers.sh", *extra, METHOD=method)
        ns = validate_swift(swift_parsers, command)
        ns.loss_type = ns.loss_type[0] if isinstance(ns.loss_type, list) else ns.loss_type  # as __post_init__ does
        for check in (RLHFArguments._check_rlsd, RLHFArguments._check_sdar):
            check(SimpleNamespace(**vars(ns)))

    for method in ("rlsd", "sdar", "opd", "chord", "editgrpo+rlsd", "editgrpo+chord"):
        checked(method)
    with pytest.raises(ValueError, match="cannot be combined with advantage_reweight=rlsd"):
        checked("rlsd", "--sdar_loss_coef", "0.1")


@pytest.mark.parametrize("method, message", [
    ("rlsd+sdar", "ms-swift refuses it"),
    ("sdar+opd", "would ignore the OPD-RL term"),
    ("editgrpo+rlsd+opd", "would ignore the OPD-RL term"),
    ("grpo", "want '+'-joined parts"),
    ("editgrpo", "names no peer"),
    ("rlsd+rlsd", "each once"),
])
def test_peer_recipe_refuses_before_any_model_loads(method, message):
    result = subprocess.run(["bash", str(RUN / "peers.sh")], env=recipe_env(DRY_RUN="1", METHOD=method),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr and "swift rlhf" not in result.stdout


def test_peer_recipe_needs_a_method():
    result = subprocess.run(["bash", str(RUN / "peers.sh")], env=recipe_env(DRY_RUN="1"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "set METHOD" in result.stderr


def test_teacher_peer_on_data_without_teacher_prompt_stops_before_swift(tmp_path):
    """Old converted files (no `teacher_prompt`): the recipe names the column and `editgrpo convert`, and
    swift is never started; CHORD does not read the column and runs."""
    swift, record = stand_in(tmp_path, "swift")
    old = tmp_path / "data" / "iu_xray"
    old.mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": "<image><image>x"}, {"role": "assistant", "content": "y"}],
             "images": ["/a.png", "/b.png"], "solution": "y"}] * 3
    (old / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    checkpoint = tmp_path / "sft" / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    env = {"SWIFT": str(swift), "DATASET": "iu-xray", "EDITGRPO_DATA_DIR": str(tmp_path / "data"),
           "SFT_CHECKPOINT": str(checkpoint), "OUTPUT_DIR": str(tmp_path / "out")}
    for method in ("rlsd", "opd", "editgrpo+rlsd"):
        result = subprocess.run(["bash", str(RUN / "peers.sh")], env=recipe_env(METHOD=method, **env),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "`teacher_prompt` column" in result.stderr and "editgrpo convert" in result.stderr
        assert str(old / "train.jsonl") in result.stderr
    assert not record.exists()
    result = subprocess.run(["bash", str(RUN / "peers.sh")], env=recipe_env(METHOD="chord", **env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (argv,) = recorded(record)
    assert argv[argv.index("--chord_sft_dataset") + 1] == "iu_xray_editgrpo"


# ----------------------------------------------------------------------------- model families (MODEL_FAMILY)

def _family(name: str):
    from templates.families import FAMILIES

    return FAMILIES[name]


FAMILY_NAMES = ("qwen2_5_vl", "qwen3_vl", "qwen3_5")


def _swap(args: list[str], values: dict[str, str]) -> list[str]:
    """argv with the values of the named flags replaced."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg.startswith("--") and arg[2:] in values:
            out[i + 1] = values[arg[2:]]
    return out


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_model_family_selects_model_template_and_pixels(swift_parsers, family):
    """MODEL_FAMILY=F: swift's own parsers accept every recipe; F changes the model, --model_type, the template
    and the pixel bounds (the paper's 512 / 334 visual tokens on F's grid) and nothing else."""
    spec = _family(family)
    (sft,) = dry_run("sft.sh", MODEL_FAMILY=family, NPROC_PER_NODE="8")
    (edit,) = dry_run("editgrpo.sh", MODEL_FAMILY=family, NPROC_PER_NODE="8")
    (base,) = dry_run("grpo_baseline.sh", MODEL_FAMILY=family, NPROC_PER_NODE="8")
    (server,) = dry_run("rollout_server.sh", MODEL_FAMILY=family, CUDA_VISIBLE_DEVICES="4,5")
    for command in (sft, edit, base, server):
        ns = validate_swift(swift_parsers, command)
        assert ns.template == spec.cxr_template
        assert (command.env["MAX_PIXELS"], command.env["MIN_PIXELS"]) == (str(spec.max_pixels), str(spec.min_pixels))
        assert (spec.visual_tokens(int(command.env["MAX_PIXELS"])), spec.visual_tokens(int(command.env["MIN_PIXELS"]))) == (512, 334)
    for command in (sft, edit, base):
        assert validate_swift(swift_parsers, command).model_type == spec.model_type
    assert validate_swift(swift_parsers, sft).model.endswith("/" + spec.checkpoint)
    assert _without_output_dir(edit) == _without_output_dir(base)
    paper_sft, = dry_run("sft.sh", NPROC_PER_NODE="8")
    paper_edit, = dry_run("editgrpo.sh", NPROC_PER_NODE="8")
    for mine, paper in ((sft, paper_sft), (edit, paper_edit)):
        swapped = _swap(paper.args, {"template": spec.cxr_template, "model_type": spec.model_type,
                                     "model": mine.flag("model")})
        assert mine.args == swapped  # the paper's settings otherwise
    assert validate_swift(swift_parsers, paper_sft).model_type == "qwen2_5_vl"  # the default: the paper's policy


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_model_family_is_derived_from_the_base_models_config(swift_parsers, family, tmp_path):
    spec = _family(family)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": [spec.architecture],
                                                      "model_type": spec.config_model_type}))
    (command,) = dry_run("sft.sh", BASE_MODEL=str(tmp_path))
    ns = validate_swift(swift_parsers, command)
    assert (ns.model, ns.model_type, ns.template) == (str(tmp_path), spec.model_type, spec.cxr_template)
    assert command.env["MAX_PIXELS"] == str(spec.max_pixels)
    (command,) = dry_run("sft.sh", BASE_MODEL=str(tmp_path), MODEL_FAMILY=family, MAX_PIXELS="12544")
    assert (command.env["MAX_PIXELS"], command.env["MIN_PIXELS"]) == ("12544", "12544")  # MIN never above MAX


@pytest.mark.parametrize("env, message", [
    ({"MODEL_FAMILY": "llava"}, "unknown model family 'llava'; the table has qwen2_5_vl, qwen3_vl, qwen3_5"),
    ({"config": "LlavaForConditionalGeneration"}, "names architecture 'LlavaForConditionalGeneration'"),
    ({"config": "Qwen2_5_VLForConditionalGeneration", "MODEL_FAMILY": "qwen3_vl"},
     "MODEL_FAMILY=qwen3_vl but "),
    ({"MODEL_FAMILY": "qwen3_vl", "TEMPLATE": "qwen2_5_vl_cxr"},
     "template 'qwen2_5_vl_cxr' does not fit the Qwen3-VL model"),
    ({"MODEL_FAMILY": "qwen3_5", "MAX_PIXELS": "1000"}, "MAX_PIXELS=1000 holds no visual token of Qwen3.5"),
    ({"MAX_PIXELS": "401408", "MIN_PIXELS": "500000"}, "MIN_PIXELS=500000 asks for 637"),
    ({"MAX_PIXELS": "4e5"}, "MAX_PIXELS='4e5': expected a whole number of pixels"),
])
def test_bad_model_settings_stop_the_recipe_before_swift(env, message, tmp_path):
    """An unsupported architecture, a family/template/checkpoint mismatch or pixel bounds off the family's grid
    stop every recipe built on common.sh with the reason (exit 2), before swift or any model is started."""
    env = dict(env)
    if "config" in env:
        (tmp_path / "config.json").write_text(json.dumps({"architectures": [env.pop("config")]}))
        env["BASE_MODEL"] = str(tmp_path)
    for script in ("sft.sh", "editgrpo.sh"):
        result = subprocess.run(["bash", str(RUN / script)], env=recipe_env(DRY_RUN="1", **env),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr and "swift" not in result.stdout, result.stderr
