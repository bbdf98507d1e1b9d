"""The GPU check (benchmarks/gpu_check.sh, issue 13) without a GPU: its dry-run path end to end on CPU,
its argument errors, and the full-size policy's architecture (the published Qwen2.5-VL-3B sizes)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.sh"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """python3 = this interpreter (the project's .venv, which holds ms-swift), no wheels, everything under tmp_path."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "GPU_CHECK_WHEELS": "", "GPU_CHECK_WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"), **extra}
    env.pop("PYTHONPATH", None)
    return env


def _full_step_module():
    spec = importlib.util.spec_from_file_location("gpu_full_step", REPO_ROOT / "benchmarks" / "gpu_full_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_dry_run_completes_both_parts(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--size", "tiny"], cwd=REPO_ROOT,
                            env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    results = tmp_path / "out" / "gpu_check.txt"
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    text = results.read_text()
    assert (tmp_path / "out" / "gpu_check.log").stat().st_size > len(text) / 2
    # part 1: the batched step, its next epoch, the cold EditGRPO step and the reference style, timed
    for row in ("| ours: batched", "| ours: next epoch", "| EditGRPO step, cold: edit analysis",
                "| reference style: 1 pair/call"):
        assert row in text, text
    assert "(part 1: exit 0," in text
    # part 2: both swift runs finished and logged a timed step; the hook's share is reported
    for run in ("EditGRPO", "Dr.GRPO"):
        line = next(line for line in text.splitlines() if line.startswith(f"| {run} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1].startswith("ok"), line
        assert int(cells[2]) >= 1 and float(cells[3].split()[0]) > 0, line
    assert "goal: edit hook" in text and "(part 2: exit 0," in text


def test_unknown_argument_is_a_usage_error(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), "--gpus", "2"], cwd=REPO_ROOT, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown argument --gpus" in result.stderr


def test_missing_wheels_say_how_to_prepare(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--size", "tiny"], cwd=REPO_ROOT,
                            env=_env(tmp_path, GPU_CHECK_WHEELS=str(tmp_path / "no-wheels")),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--prepare" in result.stderr


def test_full_policy_has_the_3b_architecture_on_the_tiny_vocabulary(tiny_model_dir):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = _full_step_module().full_config(tiny_model_dir)
    tiny = Qwen2_5_VLConfig.from_pretrained(tiny_model_dir)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads,
            text.intermediate_size, text.vocab_size) == (2048, 36, 16, 2, 11008, 151936)
    assert len(text.layer_types) == 36
    assert sum(text.rope_parameters["mrope_section"]) == text.hidden_size // text.num_attention_heads // 2
    assert (vision.depth, vision.hidden_size, vision.num_heads, vision.out_hidden_size) == (32, 1280, 16, 2048)
    assert config.image_token_id == tiny.image_token_id and text.eos_token_id == tiny.text_config.eos_token_id
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    total = sum(p.numel() for p in model.parameters())
    visual = sum(p.numel() for p in model.model.visual.parameters())
    # Qwen2.5-VL-3B: 3.75 B with tied embeddings; untied here: + 151,936 x 2048
    assert abs(total - 151936 * 2048 - 3.754e9) < 0.01e9, total
    assert abs(visual - 0.669e9) < 0.01e9, visual
