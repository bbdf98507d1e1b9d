"""How edited rows enter the policy loss (`EDITGRPO_EDIT_RATIO`): the maths, torch tensors in and out.

An edited completion was written by the edit rule, not sampled, so it has no behaviour-policy
probability to put in an importance ratio.

- `recompute` (default, the reference code's): swift's ratio exp(logp - old_logp) with the old
  log-probs recomputed on the edited tokens, so 1 at the first iteration, clipped like any row.
- `luffy` (LUFFY, arXiv 2504.14945, "policy shaping" of off-policy tokens): pi_old := 1 and the
  shaped ratio f(p) = p / (p + gamma), p = exp(logp) the current policy's token probability,
  with no clipping. Its gradient, gamma p / (p + gamma)^2 * grad(logp), stays large on tokens the
  policy finds unlikely (where a clipped ratio would pass little), and f < 1 everywhere.

`luffy_per_token_loss` is the policy term of the edited rows; `reduce_like_swift` sums a per-token
term the way swift reduces its loss for the loss types `luffy` supports; `luffy_problems` names the
swift settings under which swift's loss has no per-token policy ratio to replace.
"""
from __future__ import annotations

import math

import torch

EDIT_RATIOS: tuple[str, ...] = ("recompute", "luffy")
LUFFY_DEFAULT_GAMMA = 0.1  # the LUFFY paper's
# swift loss types whose policy term is -min(r A, clip(r) A) per token, reduced linearly
LUFFY_LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo")


def luffy_shaped_ratio(per_token_logps: torch.Tensor, gamma: float) -> torch.Tensor:
    """p / (p + gamma) with p = exp(logp), computed as sigmoid(logp - log gamma) (no overflow or 0/0)."""
    return torch.sigmoid(per_token_logps - math.log(gamma))


def luffy_per_token_loss(per_token_logps: torch.Tensor, advantages: torch.Tensor, gamma: float) -> torch.Tensor:
    """-f(p) * A per token (unclipped); `advantages` [B, T] per token or [B] per sequence."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    return -luffy_shaped_ratio(per_token_logps, gamma) * advantages


def reduce_like_swift(per_token_loss: torch.Tensor, mask: torch.Tensor, loss_type: str, *,
                      max_completion_length: int, token_normalizer: torch.Tensor | float | None = None) -> torch.Tensor:
    """The scalar swift makes of a per-token loss on a micro-batch (`GRPOTrainer._compute_loss_and_metrics`):
    `mask` is the micro-batch's whole completion mask (every row, after swift's overlong filter), so a term
    on some rows is divided exactly as it would be inside swift's sum. `dapo` divides by `token_normalizer`
    (swift: num_items_in_batch / num_processes; the caller undoes the accumulation scaling like swift)."""
    mask = mask.to(per_token_loss.dtype)
    masked = per_token_loss * mask
    if loss_type == "grpo":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return masked.sum() / (mask.shape[0] * max_completion_length)
    if loss_type == "dapo":
        if token_normalizer is None:
            raise ValueError("loss_type dapo needs token_normalizer")
        return masked.sum() / token_normalizer
    raise ValueError(f"EDITGRPO_EDIT_RATIO=luffy supports loss types {'|'.join(LUFFY_LOSS_TYPES)}, not {loss_type!r}")


def luffy_problems(*, loss_type: str, use_liger_loss: bool, top_entropy_quantile: float,
                   off_policy_sequence_mask_delta: float | None, chord: bool) -> list[str]:
    """swift settings `luffy` cannot honour: the trainer replaces the edited rows' policy term after swift's
    reduction, so swift must compute it per token, reduce it linearly and mix nothing in afterwards."""
    found = []
    if loss_type not in LUFFY_LOSS_TYPES:
        found.append(f"--loss_type {loss_type} (luffy needs one of {', '.join(LUFFY_LOSS_TYPES)})")
    if use_liger_loss:
        found.append("--use_liger_kernel (the fused loss has no per-token ratio to replace)")
    if top_entropy_quantile < 1.0:
        found.append(f"--top_entropy_quantile {top_entropy_quantile} (entropy-masked policy tokens)")
    if off_policy_sequence_mask_delta is not None:
        found.append("--off_policy_sequence_mask_delta (masks sequences by their advantage)")
    if chord:
        found.append("CHORD (--chord_sft_dataset: mixes the policy loss with an SFT loss)")
    return found
