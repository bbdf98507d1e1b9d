"""The trainer's swift-free parts: one step's edits on a global rollout list, token ids, telemetry,
IS correction for edited rows, and the plugin registration."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from _edit_oracle import apply_ops
from rewards.entities.cache import CachedAnalyzer
from swift_plugins.editgrpo.algorithm.step import (EDITED, EMPTY_REFERENCE, check_group_prompts, completion_ids,
                                              edit_targets, step_telemetry)
from swift_plugins.editgrpo.algorithm.edits import EditOptions
from rewards.entities.backends import build_analyzer
from swift_plugins.editgrpo.algorithm.selection import SelectionOptions
from templates.report import split_sentences

G = 4


@pytest.fixture(scope="module")
def analyzer() -> CachedAnalyzer:
    return CachedAnalyzer(build_analyzer("lexicon"))


@pytest.fixture
def batch(iu_findings):
    """3 groups of G rollouts: each rollout is another IU report's findings (plausible but wrong)."""
    references = [iu_findings[g] for g in range(3) for _ in range(G)]
    completions = [iu_findings[10 + i] for i in range(3 * G)]
    return completions, references


def run(batch, analyzer, targets=None, selection=SelectionOptions(0.5, "overwrite", 3), step=5):
    completions, references = batch
    return edit_targets(completions, references, G, targets or range(len(completions)), analyzer, selection,
                        EditOptions(), step)


def test_k_pairs_per_group_and_edits_follow_their_ops(batch, analyzer):
    records = run(batch, analyzer)
    completions, references = batch
    assert len(records) == 3 * 2  # k = floor(4 * 0.5) = 2 per group
    for group in range(3):
        mine = [r for r in records if r.group == group]
        assert len(mine) == 2
        members = set(range(group * G, (group + 1) * G))
        sources, targets = {r.source for r in mine}, {r.target for r in mine}
        assert sources | targets <= members and not sources & targets  # overwrite: sources stay on-policy
    edited = [r for r in records if r.status == EDITED]
    assert len(edited) >= 5  # wrong reports against IU references are nearly always editable
    for record in edited:
        assert record.text != completions[record.source] and record.ops
        assert apply_ops(completions[record.source], list(record.ops)) == record.text
        assert set(split_sentences(record.text)) <= set(split_sentences(completions[record.source])) | set(
            split_sentences(references[record.source]))


def test_every_rank_partition_makes_the_same_edits(batch, analyzer):
    """Ranks see the same global list and each edits its own slice: the union equals the single-process result."""
    whole = run(batch, analyzer)
    for cut in (5, 6, 7):  # group 1 (rollouts 4..7) spans the two ranks
        parts = run(batch, analyzer, range(0, cut)) + run(batch, analyzer, range(cut, 3 * G))
        assert parts == whole
    assert run(batch, analyzer, step=6) != whole  # a new step draws new pairs


def test_in_place_placement_edits_the_sources_themselves(batch, analyzer):
    records = run(batch, analyzer, selection=SelectionOptions(0.5, "in_place", 3))
    assert records and all(r.source == r.target for r in records)


def test_empty_reference_group_is_left_unedited_and_counted(batch, analyzer):
    completions, references = batch
    references = references[:G] + [""] * G + references[2 * G:]
    records = run((completions, references), analyzer)
    empty = [r for r in records if r.group == 1]
    assert [r.status for r in empty] == [EMPTY_REFERENCE, EMPTY_REFERENCE]
    assert all(r.text == "" and r.ops == () for r in empty)
    metrics = step_telemetry(records, 3 * G)
    assert metrics["editgrpo/empty_reference_groups"] == 1.0
    attempted = [r for r in records if r.status != EMPTY_REFERENCE]
    assert metrics["editgrpo/success_rate"] == sum(r.status == EDITED for r in attempted) / len(attempted)


def test_telemetry_counts_ops_and_splits_rewards(batch, analyzer):
    records = run(batch, analyzer)
    rewards = [float(i) for i in range(3 * G)]
    metrics = step_telemetry(records, 3 * G, rewards)
    edited = [r for r in records if r.status == EDITED]
    assert metrics["editgrpo/edited_fraction"] == len(edited) / (3 * G)
    assert sum(v for k, v in metrics.items() if k.startswith("editgrpo/ops/")) == sum(len(r.ops) for r in edited)
    targets = {r.target for r in edited}
    assert metrics["editgrpo/reward_edited"] == pytest.approx(sum(targets) / len(targets))
    rest = [i for i in range(3 * G) if i not in targets]
    assert metrics["editgrpo/reward_on_policy"] == pytest.approx(sum(rest) / len(rest))


def test_groups_must_hold_one_prompt():
    check_group_prompts(["a", "a", "b", "b"], 2)
    with pytest.raises(RuntimeError, match="mix prompts"):
        check_group_prompts(["a", "b", "b", "b"], 2)


def test_completion_ids_end_with_im_end_and_respect_the_budget(tiny_model_dir, iu_findings):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def encode(text):
        return tokenizer.encode(text, add_special_tokens=False)

    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=True)

    text = iu_findings[0]
    n = len(encode(text))
    ids, kept = completion_ids(text, encode, decode, im_end, max_length=n + 5)
    assert ids == encode(text) + [im_end] and kept == text
    ids, kept = completion_ids(text, encode, decode, im_end, max_length=n)  # fits, end token cut
    assert ids == encode(text) and kept == text
    ids, kept = completion_ids(text, encode, decode, im_end, max_length=8)
    assert ids == encode(text)[:8] and kept == decode(encode(text)[:8]) and text.startswith(kept)
    with pytest.raises(ValueError):
        completion_ids(text, encode, decode, im_end, max_length=0)


def test_edited_rows_get_importance_ratio_one():
    """Edited rows have no engine log-probs: their behaviour log-probs become the recomputed old ones."""
    from swift.rlhf_trainers import GRPOTrainer
    from swift.rlhf_trainers.utils import build_rollout_logps

    from swift_plugins.editgrpo.trainer import rollout_logps_with_edits

    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    old = torch.log(torch.tensor([[0.5, 0.4, 0.3, 0.9], [0.2, 0.6, 0.9, 0.9], [0.7, 0.1, 0.2, 0.3]]))
    engine = [[[-0.5, -1.0, -1.5]], [], [[-0.1, -2.0, -1.0, -1.2]]]  # row 1 was edited: no engine log-probs
    assert build_rollout_logps(engine, mask, "cpu") is None  # swift alone would drop the correction
    behaviour = rollout_logps_with_edits(engine, [False, True, False], mask, old)
    assert torch.equal(behaviour[1], old[1])
    assert torch.equal(behaviour[0, :3], torch.tensor([-0.5, -1.0, -1.5]))
    trainer = SimpleNamespace(rollout_importance_sampling_mode="token_truncate", rollout_importance_sampling_threshold=2.0)
    weights = GRPOTrainer._apply_rollout_importance_sampling(trainer, old - behaviour, mask)
    assert torch.allclose(weights[1], torch.ones(4))
    assert not torch.allclose(weights[0, :3], torch.ones(3))
    assert rollout_logps_with_edits([[], [], []], [False, True, False], mask, old) is None  # no engine log-probs at all
    assert torch.equal(rollout_logps_with_edits([[], [], []], [True] * 3, mask, old), old)


def test_package_import_is_cheap():
    code = "import sys, swift_plugins.editgrpo; print(any(m in sys.modules for m in ('swift', 'torch', 'transformers')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_plugin_registers_trainer_orms_templates_and_datasets():
    from swift.dataset.register import DATASET_MAPPING
    from swift.rewards import orms
    from swift.template import TEMPLATE_MAPPING
    from swift.trainers import TrainerFactory
    from swift.utils import import_external_file

    from swift_plugins.editgrpo.tiny.swift_run import PLUGIN

    module = import_external_file(str(PLUGIN))
    assert TrainerFactory.TRAINER_MAPPING["grpo"] == "swift_plugins.editgrpo.trainer.EditGRPOTrainer"
    assert module.REGISTERED[0] == TrainerFactory.TRAINER_MAPPING["grpo"] and len(module.REGISTERED) == 4
    assert "editgrpo_clinical" in orms and "qwen2_5_vl_cxr" in TEMPLATE_MAPPING
    assert any("iu_xray_editgrpo" in str(key) for key in DATASET_MAPPING)
    assert str(PLUGIN.parent) not in sys.path  # its folder is taken off sys.path again
    from swift.rlhf_trainers import GRPOTrainer

    from swift_plugins.editgrpo.trainer import EditGRPOTrainer

    assert TrainerFactory.get_trainer_cls(SimpleNamespace(rlhf_type="grpo")) is EditGRPOTrainer
    assert issubclass(EditGRPOTrainer, GRPOTrainer)
