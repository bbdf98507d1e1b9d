"""One training step's post-rollout edits on the global rollout list (docs/algorithm.md §5), swift-free.

The trainer gathers every rank's rollouts into one list (global order = rank 0's slice, then
rank 1's, ...; group g = positions g*G .. g*G+G-1, as swift's advantage reshapes rewards), and
every rank calls `edit_targets` on that same list with its own range of target positions: the
pair selection depends only on (group ids, options, step), and each pair's edit RNG only on
(seed, step, source), so all ranks agree without further communication and each rank analyses
only the sources of its own targets.

`completion_ids` turns an edited text into completion tokens (no special tokens, then
`<|im_end|>`, truncated to the completion budget); `step_telemetry` summarises the step.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from rewards.entities.types import ReportAnalysis
from swift_plugins.editgrpo.algorithm.edits import OP_NAMES, EditOptions, edit_report
from swift_plugins.editgrpo.algorithm.selection import EditPair, SelectionOptions, pair_rng, select_edit_pairs
from templates.report import normalize

EDITED = "edited"  # the target now holds an edited copy of its source
UNCHANGED = "unchanged"  # the edit changed nothing: the target keeps its own rollout
EMPTY_REFERENCE = "empty_reference"  # nothing to edit towards: left unedited, counted


class PairAnalyzer(Protocol):
    """What the step needs of an entity analyzer (e.g. `rewards.entities.cache.CachedAnalyzer`): both
    sides of the pairs analysed in one call, in input order."""

    def analyze_pairs(
        self, generated: Sequence[str], references: Sequence[str]
    ) -> tuple[list[ReportAnalysis], list[ReportAnalysis]]: ...


@dataclass(frozen=True)
class EditRecord:
    """The outcome of one (source, target) pair."""

    group: int
    source: int  # global index of the rollout that was edited
    target: int  # global index that receives the edited copy
    status: str  # EDITED | UNCHANGED | EMPTY_REFERENCE
    text: str = ""  # the edited report (EDITED only)
    ops: tuple[dict, ...] = field(default=())  # EditOp.to_dict() records (EDITED only)


def positional_groups(n_rollouts: int, group_size: int) -> list[int]:
    """Group id of every global position: swift's default advantage groups consecutive blocks of G."""
    if group_size < 1 or n_rollouts % group_size:
        raise ValueError(f"{n_rollouts} rollouts do not form groups of {group_size}")
    return [index // group_size for index in range(n_rollouts)]


def check_group_prompts(prompt_ids: Sequence[str], group_size: int) -> None:
    """Every positional group must hold one prompt; anything else means swift's layout changed."""
    for start in range(0, len(prompt_ids), group_size):
        members = set(prompt_ids[start:start + group_size])
        if len(members) != 1:
            raise RuntimeError(f"rollouts {start}..{start + group_size - 1} mix prompts {sorted(members)}; "
                               "EditGRPO needs each group of num_generations consecutive rollouts to share a prompt")


def edit_targets(
    completions: Sequence[str],
    references: Sequence[str | None],
    group_size: int,
    targets: range,
    analyzer: PairAnalyzer,
    selection: SelectionOptions,
    edit_options: EditOptions,
    step: int,
) -> list[EditRecord]:
    """Edit records for the pairs whose target lies in `targets`, in target order.

    `completions`/`references` are the global lists (reference = the group's gold report).
    A pair whose reference is empty is not analysed and is recorded as EMPTY_REFERENCE.
    """
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} completions but {len(references)} references")
    pairs = [p for p in select_edit_pairs(positional_groups(len(completions), group_size), selection, step)
             if p.target in targets]
    pairs.sort(key=lambda p: p.target)
    records: dict[int, EditRecord] = {}
    live: list[EditPair] = []
    for pair in pairs:
        if normalize(references[pair.source] or ""):
            live.append(pair)
        else:
            records[pair.target] = EditRecord(pair.group, pair.source, pair.target, EMPTY_REFERENCE)
    if live:
        generated, gold = analyzer.analyze_pairs([completions[p.source] for p in live],
                                                 [references[p.source] for p in live])
        for pair, gen, ref in zip(live, generated, gold):
            rng: random.Random = pair_rng(selection.seed, step, pair.source)
            result = edit_report(gen, ref, edit_options, rng)
            if result.changed:
                records[pair.target] = EditRecord(pair.group, pair.source, pair.target, EDITED, result.text,
                                                  tuple(op.to_dict() for op in result.ops))
            else:
                records[pair.target] = EditRecord(pair.group, pair.source, pair.target, UNCHANGED)
    return [records[p.target] for p in pairs]


def completion_ids(
    text: str, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], end_id: int, max_length: int
) -> tuple[list[int], str]:
    """Token ids of an edited completion and the text they spell.

    ids = encode(text) (no special tokens) + [end_id], cut to `max_length` (docs/algorithm.md §5), so a text of
    `max_length` tokens or more loses the end token although the row is marked finished; when
    the cut drops text tokens, the returned text is the decoded kept tokens, so the reward
    scores exactly what the policy is trained on.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    body = encode(text)
    ids = (body + [end_id])[:max_length]
    if len(body) <= len(ids):
        return ids, text
    return ids, decode(ids)


def step_telemetry(
    records: Sequence[EditRecord], n_rollouts: int, rewards: Sequence[float] | None = None
) -> dict[str, float]:
    """swift metrics for one step from the global edit records (and the global rewards, if known).

    edited_fraction: edited rows / all rows; success_rate: edited / attempted pairs (empty
    references excluded); ops/<type>: operations applied; empty_reference_groups: groups left
    unedited for lack of a reference; reward_edited / reward_on_policy: mean reward of each kind.
    """
    attempted = [r for r in records if r.status != EMPTY_REFERENCE]
    edited = [r for r in records if r.status == EDITED]
    metrics: dict[str, float] = {
        "editgrpo/edited_fraction": len(edited) / n_rollouts if n_rollouts else 0.0,
        "editgrpo/edit_pairs": float(len(records)),
        "editgrpo/empty_reference_groups": float(len({r.group for r in records if r.status == EMPTY_REFERENCE})),
    }
    if attempted:
        metrics["editgrpo/success_rate"] = len(edited) / len(attempted)
    counts = Counter(op["op"] for r in edited for op in r.ops)
    for op in OP_NAMES:  # every step logs every op (0 when absent): swift averages a metric over the steps it got
        metrics[f"editgrpo/ops/{op}"] = float(counts[op])
    if rewards is not None:
        edited_rows = {r.target for r in edited}
        on_edited = [float(v) for i, v in enumerate(rewards) if i in edited_rows]
        on_policy = [float(v) for i, v in enumerate(rewards) if i not in edited_rows]
        if on_edited:
            metrics["editgrpo/reward_edited"] = sum(on_edited) / len(on_edited)
        if on_policy:
            metrics["editgrpo/reward_on_policy"] = sum(on_policy) / len(on_policy)
    return metrics
