"""EditGRPO advantages: group mean-centred (Dr.GRPO) or std-normalised; numpy and torch alike; equal to swift's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from swift_plugins.editgrpo.algorithm.advantage import STD_EPS, compute_advantages


@pytest.fixture
def rewards() -> np.ndarray:
    # 3 groups of G=4 clinical rewards (0-3), one group with identical rewards
    return np.array([2.1, 0.4, 1.3, 0.9, 1.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.5, 0.25], dtype=np.float32)


def test_mean_centred_is_reward_minus_group_mean(rewards):
    advantages = compute_advantages(rewards, 4, "mean")
    for group in range(3):
        block = rewards[group * 4:(group + 1) * 4]
        np.testing.assert_allclose(advantages[group * 4:(group + 1) * 4], block - block.mean(), rtol=1e-6)
    np.testing.assert_allclose(advantages.reshape(3, 4).sum(1), 0.0, atol=1e-6)
    assert (advantages[4:8] == 0).all()


def test_std_normalised_uses_unbiased_group_std(rewards):
    advantages = compute_advantages(rewards, 4, "std")
    block = rewards[:4].astype(np.float64)
    expected = (block - block.mean()) / (block.std(ddof=1) + STD_EPS)
    np.testing.assert_allclose(advantages[:4], expected, rtol=1e-5)
    assert (advantages[4:8] == 0).all()  # zero-variance group: no division blow-up


@pytest.mark.parametrize("mode", ["mean", "std"])
def test_numpy_and_torch_agree(rewards, mode):
    from_numpy = compute_advantages(rewards, 4, mode)
    from_torch = compute_advantages(torch.from_numpy(rewards), 4, mode)
    assert isinstance(from_torch, torch.Tensor) and isinstance(from_numpy, np.ndarray)
    np.testing.assert_allclose(from_torch.numpy(), from_numpy, rtol=1e-6, atol=1e-7)


def test_mean_equals_swift_dr_grpo_flags(rewards):
    """EDITGRPO_ADVANTAGE=mean == swift's --advantage_estimator grpo --scale_rewards none, bit for bit."""
    from swift.rl_core.advantage import compute_advantages as swift_advantages

    per_func = torch.from_numpy(rewards).unsqueeze(1)
    stock, weighted = swift_advantages(per_func, torch.ones(1), 4, advantage_estimator="grpo", scale_rewards="none")
    ours = compute_advantages(weighted, 4, "mean")
    assert torch.equal(ours, stock)


def test_edited_rollouts_count_in_the_group_mean():
    """An edited copy with a high reward lowers every other member's advantage (it is in the mean)."""
    on_policy = np.array([0.5, 0.5, 0.5, 0.5])
    with_edit = np.array([0.5, 0.5, 0.5, 2.5])
    assert (compute_advantages(on_policy, 4) == 0).all()
    np.testing.assert_allclose(compute_advantages(with_edit, 4), [-0.5, -0.5, -0.5, 1.5])


def test_bad_inputs():
    with pytest.raises(ValueError, match="do not split into groups of 4"):
        compute_advantages(np.zeros(6), 4)
    with pytest.raises(ValueError, match="group_size"):
        compute_advantages(np.zeros(4), 0)
    with pytest.raises(ValueError, match="unknown advantage mode"):
        compute_advantages(np.zeros(4), 2, "rloo")
