"""Seed-level statistics for comparing training methods: mean, sd and a t-interval; paired differences.

One value per seed and method (e.g. a run's Avg). Seeds pair the methods (seed s gives every
method the same prompt order and sampling seed), so a method is compared with a baseline on the
per-seed differences: their mean, a t-interval and the paired t-test's two-sided p-value. With one
seed there is no spread: sd, interval and p are None.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float | None  # sample standard deviation (n - 1)
    ci_low: float | None  # CONFIDENCE t-interval of the mean
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None else (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class PairedDifference(Summary):
    p_value: float | None = None  # paired t-test, two-sided (None: n < 2, or every difference equal)


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sd and the t-interval of the mean of finite values (ValueError on none or non-finite)."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("no values to summarize")
    if not all(math.isfinite(v) for v in data):
        raise ValueError(f"non-finite values: {data}")
    n = len(data)
    mean = math.fsum(data) / n
    if n < 2:
        return Summary(n, mean, None, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half = _t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def paired_difference(values: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE) -> PairedDifference:
    """`values - baseline` seed by seed: mean, sd, t-interval and the paired t-test's p-value."""
    if len(values) != len(baseline):
        raise ValueError(f"{len(values)} values but {len(baseline)} baseline values: pairs must align by seed")
    summary = summarize([a - b for a, b in zip(values, baseline)], confidence)
    p_value = None
    if summary.sd is not None and summary.sd > 0:
        from scipy import stats

        t = summary.mean / (summary.sd / math.sqrt(summary.n))
        p_value = float(2 * stats.t.sf(abs(t), summary.n - 1))
    return PairedDifference(summary.n, summary.mean, summary.sd, summary.ci_low, summary.ci_high, p_value)


def _t_quantile(confidence: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, dof))
