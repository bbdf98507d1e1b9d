"""EditGRPO inside the real `swift rlhf --rlhf_type grpo` on the tiny Qwen2.5-VL, on CPU, offline
(lexicon analyzer, rules rewards), with real IU-XRay findings as references."""
from __future__ import annotations

import json

import pytest

from _edit_oracle import expected_completion
from swift_plugins.editgrpo.config import CONFIG_FILENAME
from swift_plugins.editgrpo.tiny.swift_run import (REPO_ROOT, completion_rows, grpo_args, logged_steps, run, run_dir,
                                             swift_command, write_iu_dataset)

pytestmark = pytest.mark.slow

G = 4
K = 2  # max(1, floor(4 * 0.5))
MAX_NEW = 32
REWARD = "EditGRPOClinical"


def swift_grpo(model, dataset, out, *, nproc=1, prompts=2, generations=G, max_new=MAX_NEW, env=None, plugin=None,
               extra_args=()):
    options = {} if plugin is None else {"plugin": plugin}
    args = grpo_args(dataset, generations, prompts, max_new, 2, nproc) + list(extra_args)
    argv, environment = swift_command("rlhf", model, out, args, nproc=nproc, env=env, **options)
    result = run(argv, environment)
    return result


def assert_ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]


def groups(rows, size):
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def check_edit_run(out, tokenizer, rollouts_per_step, nproc=1):
    """completions.jsonl + logging.jsonl of an edits-on run: k edited rows per group, texts, advantages."""
    rows = completion_rows(out)
    metrics = logged_steps(out)
    assert len(rows) == 2 * rollouts_per_step and len(metrics) == 2
    cross_rank_sources = 0
    for step_rows, step_metrics in zip(groups(rows, rollouts_per_step), metrics):
        edited_rows = [r for r in step_rows if r["editgrpo_edited"]]
        assert step_metrics["editgrpo/edited_fraction"] == pytest.approx(len(edited_rows) / rollouts_per_step)
        complete = step_metrics.get("editgrpo/success_rate") == 1.0
        for g, group in enumerate(groups(step_rows, G)):
            start = g * G
            rewards = [r[REWARD] for r in group]
            mean = sum(rewards) / G
            for row in group:  # advantage = reward - group mean, edited rows included
                assert row["advantages"] == pytest.approx(row[REWARD] - mean, abs=1e-5)
            edited = [(start + i, r) for i, r in enumerate(group) if r["editgrpo_edited"]]
            if not group[0]["solution"].strip():
                assert edited == []  # empty reference: left unedited
                continue
            assert len(edited) == K if complete else len(edited) <= K
            for index, row in edited:
                source = step_rows[row["editgrpo_source"]]
                assert start <= row["editgrpo_source"] < start + G and row["editgrpo_source"] != index
                assert not source["editgrpo_edited"]  # sources stay on-policy (placement=overwrite)
                assert row["editgrpo_ops"] and row["completion"] != source["completion"]
                assert row["completion"] == expected_completion(source["completion"], row["editgrpo_ops"], tokenizer, MAX_NEW)
                per_rank = rollouts_per_step // nproc
                cross_rank_sources += row["editgrpo_source"] // per_rank != index // per_rank
        assert sum(v for k, v in step_metrics.items() if k.startswith("editgrpo/ops/")) == sum(
            len(r["editgrpo_ops"]) for r in edited_rows)
        assert {"editgrpo/reward_edited", "editgrpo/reward_on_policy", "editgrpo/hook_seconds"} <= set(step_metrics)
    assert any(m.get("editgrpo/success_rate") == 1.0 for m in metrics)
    return rows, metrics, cross_rank_sources


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_single_process_edits_advantages_and_telemetry(tiny_model_dir, tokenizer, tmp_path):
    # 4 studies, 2 per step, 2 steps: every study is seen once; study 3 has no FINDINGS
    dataset = write_iu_dataset(tmp_path / "data", 4, empty_reference_rows=(3,))
    result = swift_grpo(tiny_model_dir, dataset, tmp_path / "out")
    assert_ok(result)
    rows, metrics, _ = check_edit_run(tmp_path / "out", tokenizer, 2 * G)
    assert sum(m["editgrpo/empty_reference_groups"] for m in metrics) == 1
    saved = json.loads((run_dir(tmp_path / "out") / CONFIG_FILENAME).read_text())
    assert (saved["analyzer"], saved["reward"]["backend"], saved["edits"]) == ("lexicon", "rules", True)
    assert saved["swift"]["loss_type"] == "dr_grpo"


def test_two_processes_groups_span_ranks(tiny_model_dir, tokenizer, tmp_path):
    """12 rollouts per step over 2 ranks (6 each): group 1 = rollouts 4..7 lives on both ranks."""
    dataset = write_iu_dataset(tmp_path / "data", 6)
    result = swift_grpo(tiny_model_dir, dataset, tmp_path / "out", nproc=2, prompts=3)
    assert_ok(result)
    _, _, cross_rank_sources = check_edit_run(tmp_path / "out", tokenizer, 3 * G, nproc=2)
    assert cross_rank_sources > 0  # a rank wrote an edit of a rollout generated on the other rank


def test_edits_off_is_stock_dr_grpo(tiny_model_dir, tmp_path):
    """EDITGRPO_EDITS=off through EditGRPOTrainer == swift's own GRPOTrainer with the Dr.GRPO flags."""
    dataset = write_iu_dataset(tmp_path / "data", 2)
    rewards_only = tmp_path / "rewards_plugin.py"  # stock trainer, same reward function
    rewards_only.write_text(f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
                            "from rewards.orms import register_orms\nregister_orms()\n")
    # sampling stock swift honours exactly on this engine (its --top_k -1 on a checkpoint without top_k is top-k 50;
    # EditGRPOTrainer samples the full distribution: tests/test_trainer_sampling.py)
    sampling = ("--top_k", "50")
    ours = swift_grpo(tiny_model_dir, dataset, tmp_path / "ours", generations=2, max_new=16,
                      env={"EDITGRPO_EDITS": "off"}, extra_args=sampling)
    stock = swift_grpo(tiny_model_dir, dataset, tmp_path / "stock", generations=2, max_new=16, plugin=rewards_only,
                       extra_args=sampling)
    assert_ok(ours)
    assert_ok(stock)
    assert "EditGRPO configuration" in ours.stdout + ours.stderr
    assert "EditGRPO configuration" not in stock.stdout + stock.stderr
    ours_rows, stock_rows = completion_rows(tmp_path / "ours"), completion_rows(tmp_path / "stock")
    assert len(ours_rows) == len(stock_rows) == 2 * 2 * 2
    assert not any(r["editgrpo_edited"] for r in ours_rows)
    for mine, theirs in zip(ours_rows, stock_rows):
        assert mine["completion"] == theirs["completion"]
        assert mine[REWARD] == theirs[REWARD]
        assert mine["advantages"] == theirs["advantages"]
    assert [m["loss"] for m in logged_steps(tmp_path / "ours")] == [m["loss"] for m in logged_steps(tmp_path / "stock")]


def test_bad_config_stops_before_training_with_one_message(tiny_model_dir, tmp_path):
    dataset = write_iu_dataset(tmp_path / "data", 2)
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    env = {"EDITGRPO_TAU": "1.5", "EDITGRPO_EDIT_FRACTION": "0", "EDITGRPO_ANALYZER": "rate",
           "EDITGRPO_MODELS_DIR": str(empty_models)}
    result = swift_grpo(tiny_model_dir, dataset, tmp_path / "out", generations=2, max_new=8, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Train:" not in output and not list((tmp_path / "out").rglob(CONFIG_FILENAME))
    errors = [line for line in output.splitlines() if "EditGRPOConfigError: invalid EditGRPO configuration" in line]
    assert len(errors) == 1
    for part in ("EDITGRPO_TAU=1.5: must be in [0, 1]", "EDITGRPO_EDIT_FRACTION=0.0: must be in (0, 1]",
                 "RaTE-NER", "BioLORD", str(empty_models)):
        assert part in errors[0]


def test_multi_turn_scheduler_is_refused_before_training(tiny_model_dir, tmp_path):
    """Multi-turn rollouts have no single completion to edit nor fixed groups for the advantage."""
    dataset = write_iu_dataset(tmp_path / "data", 2)
    args = grpo_args(dataset, 2, 2, 8, 1) + ["--multi_turn_scheduler", "gym_scheduler"]
    result = run(*swift_command("rlhf", tiny_model_dir, tmp_path / "out", args))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Train:" not in output
    assert "EditGRPOConfigError" in output and "drop --multi_turn_scheduler" in output
