"""Group selection (docs/algorithm.md §5): k sources -> k targets, edit_fraction, placement, seeded, rank-agnostic."""
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from swift_plugins.editgrpo.algorithm.selection import (
    SelectionOptions, edits_per_group, pair_rng, select_edit_pairs, step_rng,
)


def test_k_follows_the_spec():
    overwrite = SelectionOptions()
    assert [edits_per_group(g, overwrite) for g in (1, 2, 3, 4, 5, 8)] == [0, 1, 1, 2, 2, 4]
    in_place = SelectionOptions(placement="in_place")
    assert [edits_per_group(g, in_place) for g in (1, 2, 5)] == [1, 1, 2]
    assert edits_per_group(5, SelectionOptions(edit_fraction=0.0)) == 0
    assert edits_per_group(5, SelectionOptions(edit_fraction=0.1)) == 1  # max(1, floor(0.5))
    assert edits_per_group(5, SelectionOptions(edit_fraction=1.0)) == 2  # overwrite: capped at G // 2
    assert edits_per_group(5, SelectionOptions(edit_fraction=1.0, placement="in_place")) == 5


def test_paper_setting_g5_two_sources_two_targets():
    group_ids = [f"prompt-{i // 5}" for i in range(32 * 5)]  # 32 prompts x G=5, contiguous
    pairs = select_edit_pairs(group_ids, SelectionOptions(seed=3), step=7)
    per_group = Counter(p.group for p in pairs)
    assert set(per_group.values()) == {2} and len(per_group) == 32
    for pair in pairs:
        assert group_ids[pair.source] == group_ids[pair.target] == pair.group and pair.source != pair.target
    sources, targets = {p.source for p in pairs}, {p.target for p in pairs}
    assert not sources & targets and len(sources) == len(targets) == 64


def test_identical_on_every_rank_and_seeded_by_step():
    group_ids = [i // 4 for i in range(64)]
    options = SelectionOptions(seed=11)
    assert select_edit_pairs(group_ids, options, 5) == select_edit_pairs(list(group_ids), SelectionOptions(seed=11), 5)
    assert select_edit_pairs(group_ids, options, 5) != select_edit_pairs(group_ids, options, 6)
    assert select_edit_pairs(group_ids, options, 5) != select_edit_pairs(group_ids, SelectionOptions(seed=12), 5)
    assert step_rng(1, 2).random() == step_rng(1, 2).random() != step_rng(2, 1).random()
    assert pair_rng(1, 2, 3).random() == pair_rng(1, 2, 3).random() != pair_rng(1, 2, 4).random()


def test_interleaved_groups_and_uneven_sizes():
    group_ids = ["a", "b", "a", "c", "b", "a", "a", "b"]  # a: 4 members, b: 3, c: 1
    pairs = select_edit_pairs(group_ids, SelectionOptions(), step=0)
    assert Counter(p.group for p in pairs) == {"a": 2, "b": 1}
    assert [p.group for p in pairs] == ["a", "a", "b"]  # groups in order of first appearance
    in_place = select_edit_pairs(group_ids, SelectionOptions(placement="in_place"), step=0)
    assert Counter(p.group for p in in_place) == {"a": 2, "b": 1, "c": 1}
    assert all(p.source == p.target for p in in_place)


def test_shuffle_is_uniform_enough():
    counts = Counter()
    for step in range(2000):
        for pair in select_edit_pairs([0] * 5, SelectionOptions(), step):
            counts[("s", pair.source)] += 1
            counts[("t", pair.target)] += 1
    for role in "st":
        for index in range(5):
            assert 650 < counts[(role, index)] < 950  # expected 800


@pytest.mark.parametrize("kwargs", [{"edit_fraction": -0.1}, {"edit_fraction": 1.5}, {"placement": "append"}])
def test_option_validation(kwargs):
    with pytest.raises(ValueError):
        SelectionOptions(**kwargs)


@settings(max_examples=200, deadline=None)
@given(group_ids=st.lists(st.integers(0, 6), max_size=60), fraction=st.floats(0, 1),
       placement=st.sampled_from(["overwrite", "in_place"]), seed=st.integers(0, 99), step=st.integers(0, 10**6))
def test_selection_properties(group_ids, fraction, placement, seed, step):
    options = SelectionOptions(fraction, placement, seed)
    pairs = select_edit_pairs(group_ids, options, step)
    assert pairs == select_edit_pairs(group_ids, options, step)
    sizes = Counter(group_ids)
    assert Counter(p.group for p in pairs) == +Counter({g: edits_per_group(n, options) for g, n in sizes.items()})
    used = [p.source for p in pairs] + ([p.target for p in pairs] if placement == "overwrite" else [])
    assert len(used) == len(set(used))
    assert all(group_ids[p.source] == group_ids[p.target] == p.group for p in pairs)
