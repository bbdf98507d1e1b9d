"""Which rollouts of a group are edited, and where the edited copies go (docs/algorithm.md §5).

Pure and deterministic: the decision depends only on the global list of group ids (one entry
per rollout, in the gathered order every rank sees), the options and the training step, so
every rank computes the same pairs without communicating.

Per group of G rollouts (members = the positions holding that group id, in order):
``k = max(1, floor(G * edit_fraction))``; the members are shuffled with one RNG seeded by
(seed, step); ``placement="overwrite"`` (reference code): the first k are sources, the next k
targets, the edited copy of source s replaces target t (k is capped at G // 2, so a group of
one is never edited); ``placement="in_place"``: the first k are edited where they are
(source == target, k capped at G). ``edit_fraction = 0`` disables edits.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Hashable, Sequence

PLACEMENTS: tuple[str, ...] = ("overwrite", "in_place")


@dataclass(frozen=True)
class SelectionOptions:
    edit_fraction: float = 0.5
    placement: str = "overwrite"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.edit_fraction <= 1.0:
            raise ValueError(f"edit_fraction must be in [0, 1], got {self.edit_fraction}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")


@dataclass(frozen=True)
class EditPair:
    """Edit rollout `source` (global index) towards its reference; the result goes to `target`."""

    group: Hashable
    source: int
    target: int


def edits_per_group(group_size: int, options: SelectionOptions) -> int:
    """k for a group of this size under the options (0 when the group cannot be edited)."""
    if options.edit_fraction <= 0.0 or group_size <= 0:
        return 0
    k = max(1, math.floor(group_size * options.edit_fraction))
    return min(k, group_size // 2 if options.placement == "overwrite" else group_size)


def step_rng(seed: int, step: int) -> random.Random:
    """The one RNG of a training step; seeded from a string so it is identical in every process."""
    return random.Random(f"editgrpo:{int(seed)}:{int(step)}")


def select_edit_pairs(group_ids: Sequence[Hashable], options: SelectionOptions, step: int) -> list[EditPair]:
    """(source, target) pairs over the global rollout list, groups in order of first appearance."""
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(group_ids):
        members.setdefault(group, []).append(index)
    rng = step_rng(options.seed, step)
    pairs: list[EditPair] = []
    for group, indices in members.items():
        k = edits_per_group(len(indices), options)
        order = list(indices)
        rng.shuffle(order)
        if options.placement == "overwrite":
            pairs.extend(EditPair(group, s, t) for s, t in zip(order[:k], order[k:2 * k]))
        else:
            pairs.extend(EditPair(group, s, s) for s in order[:k])
    return pairs


def pair_rng(seed: int, step: int, source: int) -> random.Random:
    """The RNG for one pair's edit (FN choice): depends on (seed, step, global source index) only,
    so an edit is the same whichever rank, batch or order computes it."""
    return random.Random(f"editgrpo:{int(seed)}:{int(step)}:{int(source)}")
