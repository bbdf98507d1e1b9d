"""Files `editgrpo eval` writes: metrics.json/.csv, per_sample.jsonl, the markdown table, the bar chart."""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

from datasets_registry.jsonl import write_jsonl
from swift_plugins.editgrpo.evaluation.columns import AVG_COLUMN, Column, MODEL_METRICS, TABLE_COLUMNS
from swift_plugins.editgrpo.evaluation.table import EvalResult

COUNT_KEYS = ("n", "n_empty_hyp", "n_empty_ref", "n_dropped", "green_unparsed")
OUTPUT_FILES: dict[str, str] = {"json": "metrics.json", "csv": "metrics.csv", "per_sample": "per_sample.jsonl",
                                "markdown": "metrics.md", "plot": "metrics.png"}


def _shown_columns(result: EvalResult) -> list[Column]:
    """Columns with a value for some run, in table order."""
    return [c for c in TABLE_COLUMNS if any(row.get(c.key) is not None for row in result.table.values())]


def metrics_document(result: EvalResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """metrics.json: {"runs": {run: {column: value}}, "counts", "avg_over", "settings", "sources", "notes"}."""
    return {
        "runs": result.table,
        "counts": result.counts,
        "avg_over": result.avg_over,
        "columns": {c.key: c.label for c in TABLE_COLUMNS},
        "settings": {**asdict(result.settings), **(extra or {})},
        "sources": {run.name: {"path": run.source, "format": run.format, "decoding": run.settings} for run in result.runs},
        "notes": result.notes,
    }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def markdown_table(result: EvalResult) -> str:
    """The paper's table (Mi-14 … GREEN, Avg, then the extras) with the settings and notes below it."""
    columns = [c for c in TABLE_COLUMNS if c.clinical or c is AVG_COLUMN] + [
        c for c in _shown_columns(result) if not c.clinical and c is not AVG_COLUMN
    ]
    lines = [
        "| Run | " + " | ".join(c.label for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, row in result.table.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c.key)) for c in columns) + " |")
    settings = result.settings
    lines += [
        "",
        f"Backend: `{settings.backend}`"
        + (" (offline rule-based proxies, not the real scorers)" if settings.backend == "rules" else "")
        + f"; cleaning: `{settings.clean}`; metrics: {', '.join(settings.metrics)}.",
        "Avg = mean of the clinical columns present ("
        + "; ".join(f"{name}: {len(keys) or 'none'}" for name, keys in result.avg_over.items())
        + "); – = not computed.",
    ]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_csv(result: EvalResult, path: Path) -> None:
    columns = _shown_columns(result)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", *(c.key for c in columns), *COUNT_KEYS])
        for name, row in result.table.items():
            counts = result.counts[name]
            writer.writerow(
                [name, *("" if row.get(c.key) is None else f"{row[c.key]:.6f}" for c in columns)]
                + [counts.get(key, "") for key in COUNT_KEYS]
            )


def plot_runs(result: EvalResult, path: Path) -> None:
    """Grouped bars: one group per metric column, one bar per run, values printed above the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns = _shown_columns(result)
    runs = list(result.table)
    width = 0.8 / max(len(runs), 1)
    positions = np.arange(len(columns))
    figure, axis = plt.subplots(figsize=(max(6.0, 0.55 * len(columns) * (1 + 0.25 * len(runs)) + 2.5), 4.2))
    for index, name in enumerate(runs):
        values = [result.table[name].get(c.key) for c in columns]
        offsets = positions - 0.4 + width * (index + 0.5)
        bars = axis.bar(offsets, [0.0 if v is None else v for v in values], width, label=name)
        for bar, value in zip(bars, values):
            if value is not None:
                axis.annotate(
                    f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points",
                )
    axis.set_xticks(positions, [c.label for c in columns])
    extras = [i for i, c in enumerate(columns) if not c.clinical and c is not AVG_COLUMN]
    if extras and extras[0] > 0:  # the lexical extras are not part of the paper's table
        axis.axvline(extras[0] - 0.5, color="grey", linestyle=":", linewidth=1)
    top = max((v for row in result.table.values() for v in row.values() if v is not None), default=1.0)
    axis.set_ylim(0, max(1.0, top) * 1.12)
    axis.set_ylabel("score")
    scorers = f"{result.settings.backend} scorers, " if set(result.settings.metrics) & set(MODEL_METRICS) else ""
    title = f"Report generation metrics ({scorers}clean={result.settings.clean})"
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def output_paths(out_dir: Path) -> dict[str, Path]:
    return {kind: out_dir / name for kind, name in OUTPUT_FILES.items()}


def write_outputs(result: EvalResult, out_dir: Path, extra_settings: dict[str, Any] | None = None) -> dict[str, Path]:
    """Writes every output file into the existing folder out_dir (a `staged_dir`); returns them by kind."""
    paths = output_paths(out_dir)
    paths["json"].write_text(json.dumps(metrics_document(result, extra_settings), indent=2) + "\n", encoding="utf-8")
    write_csv(result, paths["csv"])
    write_jsonl(paths["per_sample"], result.per_sample)
    paths["markdown"].write_text(markdown_table(result), encoding="utf-8")
    plot_runs(result, paths["plot"])
    return paths


@contextlib.contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A staging folder inside `out_dir`, made at once: a --out that is a file or not writable fails
    before any scoring, not after it. When the block ends normally every file written there
    replaces its namesake in `out_dir` (one rename each); on an exception the staging folder, and
    the folders made for it, are removed: `out_dir` never mixes the files of two runs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(out_dir))
    made = [folder for folder in (out_dir, *out_dir.parents) if not folder.exists()]  # deepest first
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    except OSError as error:  # name --out, not the staging folder
        raise type(error)(error.errno, error.strerror, str(out_dir)) from None
    try:
        yield stage
        for path in sorted(stage.iterdir()):
            os.replace(path, out_dir / path.name)
        stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in made:
            with contextlib.suppress(OSError):  # only when still empty
                folder.rmdir()
        raise
