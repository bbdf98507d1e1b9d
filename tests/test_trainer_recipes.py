"""run/editgrpo.sh and run/grpo_baseline.sh: the paper's GRPO settings, parsed by swift's own
argument parser, and identical but for EDITGRPO_EDITS."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGIN = REPO_ROOT / "swift_plugins" / "editgrpo" / "plugin.py"
LAUNCH_VARIABLES = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "MAX_PIXELS", "MIN_PIXELS",
                    "USE_CPU", "OUTPUT_DIR", "SFT_CHECKPOINT")


def dry_run(script: str, *args: str, **env: str) -> tuple[dict[str, str], list[str]]:
    """(environment, swift argv) the recipe would run."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EDITGRPO_") and k not in LAUNCH_VARIABLES}
    result = subprocess.run(["bash", str(REPO_ROOT / "run" / script), *args], env={**base, "DRY_RUN": "1", **env},
                            capture_output=True, text=True, timeout=60, check=True)
    tokens = shlex.split(result.stdout)
    environment = {}
    while "=" in tokens[0]:
        key, value = tokens.pop(0).split("=", 1)
        environment[key] = value
    assert tokens[:2] == ["swift", "rlhf"]
    return environment, tokens[2:]


@pytest.fixture(scope="module")
def parse():
    import swift.arguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    with _patch_get_type_hints():
        parser = HfArgumentParser([swift.arguments.RLHFArguments])

    def parse_args(argv: list[str]):
        namespace, unknown = parser.parse_known_args(argv)
        assert unknown == []
        return namespace

    return parse_args


@pytest.mark.parametrize("gpus", [1, 8])
def test_paper_hyper_parameters(parse, gpus):
    env, argv = dry_run("editgrpo.sh", NPROC_PER_NODE=str(gpus))
    ns = parse(argv)
    assert env["EDITGRPO_EDITS"] == "on" and (env["MAX_PIXELS"], env["MIN_PIXELS"]) == ("401408", "262144")
    assert ns.rlhf_type == "grpo" and ns.external_plugins == [str(PLUGIN)]
    assert ns.num_generations == 5
    assert ns.per_device_train_batch_size * ns.gradient_accumulation_steps * gpus == 32 * 5  # 32 prompts/step
    assert (ns.learning_rate, ns.weight_decay, ns.lr_scheduler_type, ns.beta, ns.temperature) == (
        1e-6, 0.01, "constant", 0.01, 1.0)
    assert (ns.advantage_estimator, ns.scale_rewards, ns.loss_type) == ("grpo", "none", ["dr_grpo"])
    assert ns.reward_funcs == ["editgrpo_clinical"] and ns.epsilon == 0.2 and ns.num_iterations == 1
    assert ns.freeze_vit is True and ns.torch_dtype == "bfloat16" and ns.tuner_type == "full"
    assert ns.use_vllm is True and ns.vllm_mode == "colocate"
    assert ns.template == "qwen2_5_vl_cxr" and ns.max_steps == 1000  # MIMIC-CXR: step 1000


def test_baseline_differs_only_in_the_edits():
    env = {"DATASET": "iu-xray", "NPROC_PER_NODE": "4", "EDITGRPO_ANALYZER": "lexicon", "EDITGRPO_SEED": "3"}
    edit_env, edit_argv = dry_run("editgrpo.sh", "--seed", "3", **env)
    base_env, base_argv = dry_run("grpo_baseline.sh", "--seed", "3", **env)
    assert edit_env.pop("EDITGRPO_EDITS") == "on" and base_env.pop("EDITGRPO_EDITS") == "off"
    assert edit_env == base_env and edit_env["EDITGRPO_ANALYZER"] == "lexicon"
    out = edit_argv.index("--output_dir") + 1
    assert edit_argv[out].endswith("/editgrpo") and base_argv[out].endswith("/grpo_baseline")
    assert edit_argv[:out] + edit_argv[out + 1:] == base_argv[:out] + base_argv[out + 1:]
    assert "--num_train_epochs" in edit_argv  # IU-XRay: one epoch


def test_recipe_forces_its_edit_setting():
    env, _ = dry_run("editgrpo.sh", EDITGRPO_EDITS="off")
    assert env["EDITGRPO_EDITS"] == "on"
    env, _ = dry_run("grpo_baseline.sh", EDITGRPO_EDITS="on")
    assert env["EDITGRPO_EDITS"] == "off"


def test_cpu_settings_and_bad_batch(parse):
    env, argv = dry_run("editgrpo.sh", USE_CPU="1", USE_VLLM="false", NUM_GENERATIONS="4", PROMPTS_PER_STEP="2",
                        PER_DEVICE_BATCH="8", RL_MAX_STEPS="3", DEEPSPEED="none", SFT_CHECKPOINT="/ckpt")
    ns = parse(argv)
    assert ns.use_vllm is False and ns.model == "/ckpt" and ns.max_steps == 3 and ns.gradient_accumulation_steps == 1
    result = subprocess.run(["bash", str(REPO_ROOT / "run" / "editgrpo.sh")], capture_output=True, text=True,
                            env={**os.environ, "DRY_RUN": "1", "PER_DEVICE_BATCH": "7", "NPROC_PER_NODE": "1"})
    assert result.returncode != 0 and "not divisible" in result.stderr
