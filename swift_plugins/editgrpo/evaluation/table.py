"""`evaluate_runs`: align, clean and score runs into the paper's table (docs/algorithm.md §7); `outputs` writes the files."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from swift_plugins.editgrpo.evaluation.columns import METRIC_GROUPS, TABLE_COLUMNS, average_clinical
from swift_plugins.editgrpo.evaluation.results import Pair, Run, align_runs
from swift_plugins.editgrpo.evaluation.runners import MetricRunner
from swift_plugins.editgrpo.evaluation.text import CLEANERS


@dataclass
class EvalSettings:
    metrics: tuple[str, ...]
    backend: str
    clean: str
    on_mismatch: str = "error"


@dataclass
class EvalResult:
    settings: EvalSettings
    runs: list[Run]  # aligned (and cleaned) runs, in input order
    table: dict[str, dict[str, float | None]]  # run -> column key -> value (None = not computed)
    avg_over: dict[str, list[str]]  # run -> clinical columns averaged into Avg
    counts: dict[str, dict[str, int]]  # run -> n, n_empty_hyp, n_empty_ref, n_dropped, ...
    per_sample: list[dict[str, Any]]
    notes: list[str]


def _count_notes(name: str, counts: Mapping[str, int], clean: str) -> list[str]:
    """What the outputs must say about a run's empty, left-out and unparsed pairs."""
    notes = []
    if counts["n_empty_hyp"]:
        notes.append(
            f"{name}: {counts['n_empty_hyp']} of {counts['n']} hypotheses are empty"
            + (" after cleaning" if clean != "none" else "")
            + "; they are scored (as empty reports), not dropped"
        )
    if counts["n_dropped"]:
        notes.append(f"{name}: {counts['n_dropped']} pairs left out (ids missing from another run, --on-mismatch intersect)")
    if counts.get("green_unparsed"):
        notes.append(f"{name}: {counts['green_unparsed']} GREEN judge outputs could not be parsed (scored 0)")
    return notes


def evaluate_runs(
    runs: Sequence[Run],
    settings: EvalSettings,
    runners: Mapping[str, MetricRunner],
    notes: Sequence[str] = (),
    progress: bool = True,
) -> EvalResult:
    """Align, clean and score every run with every runner; Avg over the clinical columns present."""
    from tqdm.auto import tqdm

    unknown = set(runners) - set(METRIC_GROUPS)
    if unknown:
        raise ValueError(f"unknown metric groups {sorted(unknown)}; known: {sorted(METRIC_GROUPS)}")
    alignment = align_runs(runs, settings.on_mismatch)
    clean = CLEANERS[settings.clean]
    cleaned = [
        Run(run.name, run.source, [Pair(p.id, clean(p.hyp), clean(p.ref)) for p in run.pairs], run.format, run.settings)
        for run in alignment.runs
    ]
    all_notes = list(notes)
    table: dict[str, dict[str, float | None]] = {}
    counts: dict[str, dict[str, int]] = {}
    avg_over: dict[str, list[str]] = {}
    per_sample: list[dict[str, Any]] = []
    total = sum(len(run.pairs) for run in cleaned) * len(runners)
    bar = tqdm(total=total, desc="eval", unit="pair", disable=not progress)
    for run in cleaned:
        hyps = [pair.hyp for pair in run.pairs]
        refs = [pair.ref for pair in run.pairs]
        row: dict[str, float | None] = {column.key: None for column in TABLE_COLUMNS}
        run_counts = {
            "n": len(run.pairs),
            "n_empty_hyp": sum(1 for hyp in hyps if not hyp.strip()),
            "n_empty_ref": sum(1 for ref in refs if not ref.strip()),
            "n_dropped": alignment.dropped[run.name],
        }
        samples = [
            {"run": run.name, "id": pair.id, "hyp": pair.hyp, "ref": pair.ref} for pair in run.pairs
        ]
        for group, runner in runners.items():
            bar.set_postfix_str(f"{run.name}: {group}")
            output = runner.run(hyps, refs, bar.update)
            row.update(output.corpus)
            run_counts.update(output.counts)
            for key, values in output.per_sample.items():
                for sample, value in zip(samples, values):
                    sample[key] = float(value)
        row["avg"], avg_over[run.name] = average_clinical(row)
        table[run.name], counts[run.name] = row, run_counts
        per_sample.extend(samples)
        all_notes += _count_notes(run.name, run_counts, settings.clean)
    bar.close()
    empty_refs = max(run_counts["n_empty_ref"] for run_counts in counts.values())
    if empty_refs:
        all_notes.append(f"{empty_refs} references are empty after cleaning; their pairs are scored as given")
    return EvalResult(settings, cleaned, table, avg_over, counts, per_sample, all_notes)
