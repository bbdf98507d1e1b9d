"""EDITGRPO_EDIT_RATIO: LUFFY's shaped ratio for edited rows (swift_plugins/editgrpo/edit_ratio.py) and the
trainer's loss on a hand-made micro-batch (edited and on-policy rows) against a hand computation."""
from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from swift_plugins.editgrpo.config import EditGRPOConfig, EditGRPOConfigError
from swift_plugins.editgrpo.edit_ratio import (LUFFY_LOSS_TYPES, luffy_per_token_loss, luffy_problems,
                                               luffy_shaped_ratio, reduce_like_swift)

GAMMA = 0.1


# --- the pure functions ------------------------------------------------------------------------
def test_shaped_ratio_and_its_gradient_by_hand():
    probabilities = [0.5, 0.01, 1.0, 0.9]
    logps = torch.tensor([math.log(p) for p in probabilities], dtype=torch.float64, requires_grad=True)
    shaped = luffy_shaped_ratio(logps, GAMMA)
    assert shaped.tolist() == pytest.approx([0.5 / 0.6, 0.01 / 0.11, 1 / 1.1, 0.9 / 1.0], rel=1e-12)
    shaped.sum().backward()  # d f / d logp = gamma p / (p + gamma)^2
    assert logps.grad.tolist() == pytest.approx([GAMMA * p / (p + GAMMA) ** 2 for p in probabilities], rel=1e-12)
    # gamma 1 halves a certain token; an impossible token is 0, not nan
    assert luffy_shaped_ratio(torch.tensor([0.0, -1e4]), 1.0).tolist() == [0.5, 0.0]


def test_per_token_loss_is_unclipped_minus_ratio_times_advantage():
    logps = torch.log(torch.tensor([[0.5, 0.01], [0.2, 0.9]], dtype=torch.float64))
    per_token = luffy_per_token_loss(logps, torch.tensor([[2.0, 2.0], [-1.0, -1.0]], dtype=torch.float64), GAMMA)
    assert per_token.flatten().tolist() == pytest.approx([-2 * 0.5 / 0.6, -2 * 0.01 / 0.11, 0.2 / 0.3, 0.9 / 1.0])
    per_sequence = luffy_per_token_loss(logps, torch.tensor([2.0, -1.0], dtype=torch.float64), GAMMA)
    assert torch.equal(per_sequence, per_token)  # a [B] advantage broadcasts over the row


def test_reduce_like_swift_by_hand():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert reduce_like_swift(loss, mask, "dr_grpo", max_completion_length=5).item() == pytest.approx((1 + 2 + 4) / (2 * 5))
    assert reduce_like_swift(loss, mask, "grpo", max_completion_length=5).item() == pytest.approx(((1 + 2) / 2 + 4) / 2)
    assert reduce_like_swift(loss, mask, "bnpo", max_completion_length=5).item() == pytest.approx(7 / 3)
    assert reduce_like_swift(loss, mask, "dapo", max_completion_length=5, token_normalizer=14.0).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="token_normalizer"):
        reduce_like_swift(loss, mask, "dapo", max_completion_length=5)
    with pytest.raises(ValueError, match="not 'cispo'"):
        reduce_like_swift(loss, mask, "cispo", max_completion_length=5)


def test_luffy_problems_name_each_unsupported_setting():
    fine = dict(loss_type="dr_grpo", use_liger_loss=False, top_entropy_quantile=1.0, off_policy_sequence_mask_delta=None,
                chord=False)
    assert luffy_problems(**fine) == []
    bad = luffy_problems(loss_type="cispo", use_liger_loss=True, top_entropy_quantile=0.2,
                         off_policy_sequence_mask_delta=0.5, chord=True)
    assert len(bad) == 5 and "--loss_type cispo" in bad[0] and "--use_liger_kernel" in bad[1] and "CHORD" in bad[4]


# --- the trainer's loss on a hand-made micro-batch ---------------------------------------------
B, T, MAX_LEN, BETA, EPS = 4, 3, 4, 0.04, 0.2
MASK = [[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]]
EDITED = [False, True, False, True]
ADVANTAGE = [0.8, -0.6, -0.4, 1.2]  # per row, broadcast per token as swift does
PROBS = [[0.5, 0.2, 0.9], [0.3, 0.05, 0.7], [0.6, 0.4, 0.1], [0.8, 0.5, 0.5]]
# current / old probability ratio per token: on-policy rows inside and outside the clip range, edited rows 1
RATIOS = [[1.5, 0.7, 1.0], [1.0, 1.0, 1.0], [1.1, 0.5, 1.3], [1.0, 1.0, 1.0]]
REF_SHIFT = [[0.1, -0.2, 0.05], [0.3, -0.1, 0.0], [-0.05, 0.2, 0.1], [0.15, 0.0, 0.0]]  # ref logp - logp


def _hand_loss(edit_ratio: str, loss_type: str = "dr_grpo", edited=EDITED, window_scale: float = 1.0):
    """(loss, d loss / d logp) from the formulas, in plain floats."""
    per_token, grad = [[0.0] * T for _ in range(B)], [[0.0] * T for _ in range(B)]
    for i in range(B):
        a = ADVANTAGE[i]
        for t in range(T):
            p, r, d = PROBS[i][t], RATIOS[i][t], REF_SHIFT[i][t]
            kl, kl_grad = math.exp(d) - d - 1, 1 - math.exp(d)  # k3(ref, logp) and its logp derivative
            if edited[i] and edit_ratio == "luffy":
                policy, policy_grad = -p / (p + GAMMA) * a, -a * GAMMA * p / (p + GAMMA) ** 2
            else:
                clipped = min(max(r, 1 - EPS), 1 + EPS)
                unclipped_wins = r * a <= clipped * a  # -min(r a, clip(r) a): the gradient flows only through r a
                policy, policy_grad = -min(r * a, clipped * a), (-a * r if unclipped_wins else 0.0)
            per_token[i][t], grad[i][t] = policy + BETA * kl, policy_grad + BETA * kl_grad
    lengths = [sum(row) for row in MASK]
    if loss_type == "dr_grpo":
        weights = [[m / (B * MAX_LEN) for m in row] for row in MASK]
    elif loss_type == "grpo":
        weights = [[m / (lengths[i] * B) for m in row] for i, row in enumerate(MASK)]
    elif loss_type == "bnpo":
        weights = [[m / sum(lengths) for m in row] for row in MASK]
    else:  # dapo: all tokens of the accumulation window (here 20, one process), times the accumulation steps
        weights = [[m / 20 * window_scale for m in row] for row in MASK]
    loss = sum(per_token[i][t] * weights[i][t] for i in range(B) for t in range(T))
    return loss, [[grad[i][t] * weights[i][t] for t in range(T)] for i in range(B)]


class _FixedPolicy:
    """Stands in for the model forward: the loss's policy log-probs are a leaf tensor."""

    def _get_per_token_logps_and_entropies(self, model, model_inputs, grpo_batch, compute_entropy=False,
                                           origin_data=None):
        return self.policy_logps, None


def _trainer(edit_ratio: str, loss_type: str = "dr_grpo"):
    """An EditGRPOTrainer with exactly the attributes swift's `_compute_loss_and_metrics` reads, no model."""
    from swift.rlhf_trainers import GRPOTrainer

    from swift_plugins.editgrpo.trainer import EditGRPOTrainer

    cls = type("HandTrainer", (EditGRPOTrainer, _FixedPolicy, GRPOTrainer), {})
    trainer = object.__new__(cls)
    identity = lambda x: x.reshape(-1) if x.dim() == 0 else x  # noqa: E731  (one process)
    trainer.__dict__.update(
        editgrpo=EditGRPOConfig(edit_ratio=edit_ratio, luffy_gamma=GAMMA), model=SimpleNamespace(training=True),
        args=SimpleNamespace(log_entropy=False, top_entropy_quantile=1.0, delta=None, gradient_accumulation_steps=2),
        accelerator=SimpleNamespace(gather=identity, gather_for_metrics=identity, num_processes=1),
        compute_entropy=False, overlong_filter=False, beta=BETA, kl_in_reward=False,
        rollout_importance_sampling_mode=None, log_rollout_offpolicy_metrics=False,
        disable_rollout_importance_sampling=False, importance_sampling_level="token", _has_teacher=False,
        loss_type=loss_type, off_policy_sequence_mask_delta=None, epsilon_low=EPS, epsilon_high=EPS,
        max_completion_length=MAX_LEN, sdar_loss_coef=0.0, chord_sft_iterator=None, use_liger_loss=False,
        top_entropy_quantile=1.0, model_accepts_loss_kwargs=False, compute_loss_func=None,
        current_gradient_accumulation_steps=2, _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    return trainer


def _batch(trainer, edited=EDITED):
    from swift.rl_core.data import GRPOBatch

    from swift_plugins.editgrpo.trainer import EDITED_ROWS

    logps = torch.log(torch.tensor(PROBS, dtype=torch.float64))
    trainer.policy_logps = logps.clone().requires_grad_(True)
    mask = torch.tensor(MASK, dtype=torch.bool)
    old_logps = logps - torch.log(torch.tensor(RATIOS, dtype=torch.float64))  # r = exp(logp - old) = RATIOS
    batch = GRPOBatch(completion_mask=mask, truncated_mask=torch.zeros(B, dtype=torch.bool),
                      seq_lengths=mask.sum(-1), old_per_token_logps=old_logps,
                      ref_per_token_logps=logps + torch.tensor(REF_SHIFT, dtype=torch.float64),
                      advantages=torch.tensor(ADVANTAGE, dtype=torch.float64).unsqueeze(-1).expand(B, T) * mask,
                      num_items_in_batch=torch.tensor(20.0))
    if trainer.editgrpo.edit_ratio == "luffy":  # what `_prepare_batch_inputs` attaches
        setattr(batch, EDITED_ROWS, torch.tensor(edited))
    return batch


def _loss_and_grad(trainer, batch, method=None):
    method = method or type(trainer)._compute_loss_and_metrics
    loss, _ = method(trainer, None, {}, batch)
    loss.backward()
    return loss.item(), trainer.policy_logps.grad.tolist()


@pytest.mark.parametrize("loss_type", LUFFY_LOSS_TYPES)
def test_luffy_loss_and_gradient_equal_the_hand_computation(loss_type):
    trainer = _trainer("luffy", loss_type)
    batch = _batch(trainer)
    advantages_before = batch.advantages.clone()
    loss, grad = _loss_and_grad(trainer, batch)
    expected_loss, expected_grad = _hand_loss("luffy", loss_type, window_scale=2.0)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    for row, expected_row in zip(grad, expected_grad):
        assert row == pytest.approx(expected_row, rel=1e-10, abs=1e-15)
    assert torch.equal(batch.advantages, advantages_before)  # the buffered batch is reused by later iterations
    edited_probs = [p for i, row in enumerate(PROBS) if EDITED[i] for p, m in zip(row, MASK[i]) if m]
    assert trainer._metrics["train"]["editgrpo/luffy_ratio_mean"] == pytest.approx(
        [sum(p / (p + GAMMA) for p in edited_probs) / len(edited_probs)])
    # the edited rows' term is not swift's clipped one (which the on-policy rows keep: 2 of their tokens are clipped)
    assert loss != pytest.approx(_hand_loss("recompute", loss_type, window_scale=2.0)[0], rel=1e-6)


def test_recompute_is_swifts_unmodified_loss_and_the_hand_computation():
    from swift.rlhf_trainers import GRPOTrainer

    ours, swift = _trainer("recompute"), _trainer("recompute")
    loss, grad = _loss_and_grad(ours, _batch(ours))
    swift_loss, swift_grad = _loss_and_grad(swift, _batch(swift), GRPOTrainer._compute_loss_and_metrics)
    assert (loss, grad) == (swift_loss, swift_grad)
    expected_loss, expected_grad = _hand_loss("recompute")
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    for row, expected_row in zip(grad, expected_grad):
        assert row == pytest.approx(expected_row, rel=1e-10, abs=1e-15)
    assert "editgrpo/luffy_ratio_mean" not in ours._metrics["train"]


def test_luffy_without_edited_rows_is_swifts_loss():
    from swift.rlhf_trainers import GRPOTrainer

    none_edited = [False] * B
    ours, swift = _trainer("luffy"), _trainer("recompute")
    loss, grad = _loss_and_grad(ours, _batch(ours, none_edited))
    assert (loss, grad) == _loss_and_grad(swift, _batch(swift), GRPOTrainer._compute_loss_and_metrics)
    assert loss == pytest.approx(_hand_loss("luffy", edited=none_edited)[0], rel=1e-10)
    assert "editgrpo/luffy_ratio_mean" not in ours._metrics["train"]  # no edited token to average


def test_luffy_refuses_swift_settings_it_cannot_honour():
    trainer = _trainer("luffy", "cispo")
    trainer.top_entropy_quantile = 0.5
    with pytest.raises(EditGRPOConfigError, match="EDITGRPO_EDIT_RATIO=luffy") as error:
        trainer._check_edit_ratio()
    assert "--loss_type cispo" in str(error.value) and "--top_entropy_quantile 0.5" in str(error.value)
    _trainer("luffy")._check_edit_ratio()
    _trainer("recompute", "cispo")._check_edit_ratio()  # recompute is swift's loss, whatever its type
