"""Seed-level statistics against hand computations (t with 2 degrees of freedom has a closed form)."""
import math

import pytest

from swift_plugins.editgrpo.evaluation.stats import paired_difference, summarize

T_975_DOF2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (tables)


def test_summary_by_hand():
    values = [0.3040, 0.2291, 0.3146]
    mean = (0.3040 + 0.2291 + 0.3146) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    got = summarize(values)
    assert (got.n, got.mean, got.sd) == (3, pytest.approx(mean), pytest.approx(sd))
    assert got.ci_low == pytest.approx(mean - T_975_DOF2 * sd / math.sqrt(3))
    assert got.ci_high == pytest.approx(mean + T_975_DOF2 * sd / math.sqrt(3))
    assert got.half_width == pytest.approx(T_975_DOF2 * sd / math.sqrt(3))


def test_paired_difference_by_hand():
    edit, base = [0.2545, 0.3387, 0.3086], [0.3040, 0.2291, 0.3146]
    diffs = [a - b for a, b in zip(edit, base)]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    t = mean / (sd / math.sqrt(3))
    got = paired_difference(edit, base)
    assert got.mean == pytest.approx(mean) and got.sd == pytest.approx(sd)
    assert got.ci_low == pytest.approx(mean - T_975_DOF2 * sd / math.sqrt(3))
    # two-sided p of t with 2 dof: 1 - |t| / sqrt(2 + t^2)
    assert got.p_value == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t))


def test_degenerate_inputs():
    one = summarize([0.5])
    assert (one.mean, one.sd, one.ci_low, one.half_width) == (0.5, None, None, None)
    same = paired_difference([0.5, 0.75], [0.25, 0.5])  # every difference 0.25 (exact in binary): no spread, no test
    assert (same.mean, same.sd, same.p_value) == (0.25, 0.0, None)
    with pytest.raises(ValueError, match="align by seed"):
        paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([0.1, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        summarize([])
