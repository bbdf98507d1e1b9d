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
    rewards_only = tmp_path / "rewards_plugin.py"  # stock trainer, same reward function and template
    rewards_only.write_text(f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
                            "from rewards.orms import register_orms\nregister_orms()\n"
                            "from templates import register_templates\nregister_templates()\n")
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


def test_luffy_edit_ratio_trains_and_logs_the_shaped_ratio(tiny_model_dir, tokenizer, tmp_path):
    """EDITGRPO_EDIT_RATIO=luffy in the real loop: edits as usual, the edited tokens' p/(p+gamma) logged per step."""
    dataset = write_iu_dataset(tmp_path / "data", 4)
    gamma = 0.1
    result = swift_grpo(tiny_model_dir, dataset, tmp_path / "out",
                        env={"EDITGRPO_EDIT_RATIO": "luffy", "EDITGRPO_LUFFY_GAMMA": str(gamma)})
    assert_ok(result)
    rows, metrics, _ = check_edit_run(tmp_path / "out", tokenizer, 2 * G)
    for step, step_rows in zip(metrics, groups(rows, 2 * G)):
        if any(r["editgrpo_edited"] for r in step_rows):
            assert 0.0 < step["editgrpo/luffy_ratio_mean"] < 1 / (1 + gamma)  # f(p) < f(1) for every token
        else:
            assert "editgrpo/luffy_ratio_mean" not in step
    assert any("editgrpo/luffy_ratio_mean" in m for m in metrics)
    saved = json.loads((run_dir(tmp_path / "out") / CONFIG_FILENAME).read_text())
    assert (saved["edit_ratio"], saved["luffy_gamma"]) == ("luffy", gamma)


TEACHER_RECORDER = '''
import json, os, sys
sys.path.insert(0, {root!r})
from swift_plugins.editgrpo import register
from swift_plugins.editgrpo.trainer import EditGRPOTrainer, _edited

register()  # what plugin.py does, then the recorder's wrappers
RECORD = {record!r}
apply_edits, prepare, teacher = (EditGRPOTrainer._apply_edits, EditGRPOTrainer._prepare_batch_inputs,
                                 EditGRPOTrainer._compute_teacher_logps)


def scored(inputs, batch):  # the tokens a forward's per-token log-probs are of (swift's HF logits_to_keep frame)
    ids = inputs["input_ids"][:, -batch.logits_to_keep:]
    return [row[mask].tolist() for row, mask in zip(ids, batch.completion_mask.bool())]


def _apply_edits(self, samples):
    self._sampled = {{id(s): list(s.response_token_ids) for s in samples}}
    apply_edits(self, samples)


def _compute_teacher_logps(self, model_inputs, grpo_batch, origin_data=None, teacher_model_inputs=None,
                           teacher_grpo_batch=None):
    self._teacher_calls.append((scored(model_inputs, grpo_batch), scored(teacher_model_inputs, teacher_grpo_batch),
                                teacher_model_inputs["input_ids"].shape[1] - model_inputs["input_ids"].shape[1]))
    return teacher(self, model_inputs, grpo_batch, origin_data=origin_data, teacher_model_inputs=teacher_model_inputs,
                   teacher_grpo_batch=teacher_grpo_batch)


def _prepare_batch_inputs(self, samples):
    self._teacher_calls = []
    batches = prepare(self, samples)
    sampled = getattr(self, "_sampled", {{}})
    with open(RECORD, "a") as out:
        for chunk, (student, teacher_ids, longer), batch in zip(self.split_by_mini_batches(samples),
                                                                self._teacher_calls, batches):
            for i, sample in enumerate(chunk):
                out.write(json.dumps({{"edited": _edited(sample), "sampled": sampled.get(id(sample)),
                                      "response": sample.response_token_ids, "student_scored": student[i],
                                      "teacher_scored": teacher_ids[i], "teacher_prompt_longer_by": longer,
                                      "has_teacher_logps": batch["grpo_batch"].teacher_per_token_logps is not None}})
                          + "\\n")
    return batches


EditGRPOTrainer._apply_edits = _apply_edits
EditGRPOTrainer._compute_teacher_logps = _compute_teacher_logps
EditGRPOTrainer._prepare_batch_inputs = _prepare_batch_inputs
'''


def test_rlsd_teacher_scores_the_edited_tokens(tiny_model_dir, tokenizer, tmp_path):
    """--advantage_reweight rlsd: swift's teacher forward (teacher_prompt + the row's completion) runs in
    `_prepare_batch_inputs`, after the rollout hook rewrote the edited rows, so the teacher log-probs of an
    edited row are of the edited tokens, which are also the tokens the student is trained on."""
    from datasets_registry.jsonl import read_jsonl, write_jsonl

    dataset = write_iu_dataset(tmp_path / "data", 4)
    rows = list(read_jsonl(dataset))
    for row in rows:  # the student prompt (same <image> tags) + the gold report
        user = next(m["content"] for m in row["messages"] if m["role"] == "user")
        row["teacher_prompt"] = f"{user}\nREFERENCE FINDINGS: {row['solution']}\nWrite the FINDINGS."
    write_jsonl(dataset, rows)
    record = tmp_path / "teacher.jsonl"
    recorder = tmp_path / "teacher_recorder.py"
    recorder.write_text(TEACHER_RECORDER.format(root=str(REPO_ROOT), record=str(record)))
    result = swift_grpo(tiny_model_dir, dataset, tmp_path / "out", plugin=recorder,
                        extra_args=("--advantage_reweight", "rlsd"))
    assert_ok(result)
    _, metrics, _ = check_edit_run(tmp_path / "out", tokenizer, 2 * G)
    assert all("rlsd_lambda" in m and "teacher_kl" in m for m in metrics)
    seen = list(read_jsonl(record))
    assert len(seen) == 2 * 2 * G and all(r["has_teacher_logps"] and r["teacher_prompt_longer_by"] > 0 for r in seen)
    edited = [r for r in seen if r["edited"]]
    assert edited
    for r in seen:
        assert r["teacher_scored"] == r["student_scored"] == _flat(r["response"])  # the trained tokens, after the hook
    for r in edited:
        assert r["teacher_scored"] != _flat(r["sampled"])  # not the sampled completion the edit replaced


def _flat(ids):
    """OnPolicySample.response_token_ids: one completion's ids, or a list of them (one here)."""
    return ids[0] if ids and isinstance(ids[0], list) else ids
