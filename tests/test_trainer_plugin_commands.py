"""The plugin in the other swift commands: `swift sft` and `swift infer` see the registered CXR
data sets and template (what every stage before and after GRPO needs)."""
from __future__ import annotations

import json
import shutil

import pytest

from swift_plugins.editgrpo.tiny.swift_run import run, swift_command, write_iu_dataset

pytestmark = pytest.mark.slow


def test_sft_then_infer_with_registered_dataset_and_template(tiny_model_dir, tmp_path):
    data_dir = tmp_path / "data"
    train = write_iu_dataset(data_dir / "iu_xray", 4)
    shutil.copy(train, data_dir / "iu_xray" / "test.jsonl")
    env = {"EDITGRPO_DATA_DIR": str(data_dir)}
    common = ["--template", "qwen2_5_vl_cxr", "--check_model", "false", "--dataloader_num_workers", "0"]

    argv, environment = swift_command("sft", tiny_model_dir, tmp_path / "sft", [
        *common, "--dataset", "iu_xray_editgrpo", "--max_steps", "1", "--per_device_train_batch_size", "2",
        "--tuner_type", "full", "--save_strategy", "no", "--report_to", "none", "--max_length", "512"], env=env)
    sft = run(argv, environment)
    assert sft.returncode == 0, sft.stderr[-4000:]
    assert "'loss'" in sft.stdout + sft.stderr

    result_path = tmp_path / "infer.jsonl"
    argv, environment = swift_command("infer", tiny_model_dir, None, [
        "--template", "qwen2_5_vl_cxr", "--val_dataset", "iu_xray_editgrpo:test", "--max_new_tokens", "8",
        "--result_path", str(result_path)], env=env)
    infer = run(argv, environment)
    assert infer.returncode == 0, infer.stderr[-4000:]
    rows = [json.loads(line) for line in result_path.read_text().splitlines()]
    gold = [json.loads(line)["solution"] for line in train.read_text().splitlines()]
    assert [row["labels"] for row in rows] == gold
    assert all(isinstance(row["response"], str) for row in rows)
    # qwen2_5_vl_cxr: no default system prompt, the user prompt carries the role line
    assert all(row["messages"][0]["role"] == "user" for row in rows)
