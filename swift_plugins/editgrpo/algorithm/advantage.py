"""Group-relative advantages for EditGRPO (docs/algorithm.md §6).

`A_i = R_i - mean_group(R)` over each group of `num_generations` consecutive rewards, edited
rollouts included in the mean (Dr.GRPO: no std division). The `std` option is the paper's
"normalised" ablation, `(R_i - mean) / (std + 1e-6)` with the unbiased group std (as torch's
`Tensor.std` and swift's GRPO). Pure and array-library agnostic: numpy arrays and torch
tensors go through the same arithmetic (only positional `.mean(1)`, `.sum(1)`, `** 0.5`).
"""
from __future__ import annotations

from typing import Callable, TypeVar

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor, 1-D, length = n_groups * group_size

STD_EPS = 1e-6


def _grouped(rewards: Array, group_size: int):
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if rewards.shape[0] % group_size:
        raise ValueError(f"{rewards.shape[0]} rewards do not split into groups of {group_size}")
    return rewards.reshape(-1, group_size)


def mean_centred(rewards: Array, group_size: int) -> Array:
    """R - group mean (the paper's and the reference code's default)."""
    grouped = _grouped(rewards, group_size)
    return (grouped - grouped.mean(1)[:, None]).reshape(-1)


def std_normalised(rewards: Array, group_size: int) -> Array:
    """(R - group mean) / (unbiased group std + 1e-6); a group of one has std 0."""
    grouped = _grouped(rewards, group_size)
    centred = grouped - grouped.mean(1)[:, None]
    dof = max(group_size - 1, 1)
    std = ((centred**2).sum(1) / dof) ** 0.5
    return (centred / (std[:, None] + STD_EPS)).reshape(-1)


ADVANTAGE_ESTIMATORS: dict[str, Callable] = {"mean": mean_centred, "std": std_normalised}


def compute_advantages(rewards: Array, group_size: int, mode: str = "mean") -> Array:
    """Advantages for `rewards` laid out group after group (swift's global order)."""
    try:
        estimator = ADVANTAGE_ESTIMATORS[mode]
    except KeyError:
        raise ValueError(f"unknown advantage mode {mode!r}; expected one of {sorted(ADVANTAGE_ESTIMATORS)}") from None
    return estimator(rewards, group_size)
