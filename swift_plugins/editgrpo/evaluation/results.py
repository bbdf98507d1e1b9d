"""swift infer result files: reading them as runs, the data set columns put back after inference, aligning runs."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from datasets_registry.jsonl import JsonlError, iter_jsonl, read_jsonl, write_jsonl, write_text_atomic
from templates.report import normalize
from templates.families import strip_response_prefix


class EvalInputError(ValueError):
    """A result file or a set of runs that cannot be evaluated as given; the message says why and where."""


@dataclass(frozen=True)
class Pair:
    id: str
    hyp: str
    ref: str


@dataclass
class Run:
    name: str
    source: str  # the file it was read from
    pairs: list[Pair]
    format: str  # "swift" (swift infer result rows) or "plain" ({id, hyp, ref})
    settings: dict[str, Any] | None = None  # decoding settings run/infer.sh recorded next to the file

    @property
    def ids(self) -> list[str]:
        return [pair.id for pair in self.pairs]


def settings_path(result_path: str | Path) -> Path:
    """Where run/infer.sh records the decoding settings of a result file (`X.jsonl` -> `X.settings.json`)."""
    path = Path(result_path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".settings.json")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    raise EvalInputError(f"expected text, got {type(value).__name__}: {value!r:.80}")


def parse_row(row: Mapping[str, Any], index: int) -> tuple[str, str | None, str | None, str]:
    """(id or "", hyp, ref, format) of one result row.

    swift infer rows: hyp = `response` (without a family's response prefix, Qwen3.5's thinking block);
    ref = the data set's `solution` column when present, else swift's `labels` (the gold assistant
    turn); id = `study_id`, else `id`, else "" (row order).
    Plain rows: `{id, hyp, ref}`.
    """
    if "response" in row:
        ref = _text(row.get("solution")) or _text(row.get("labels"))
        ident = row.get("study_id", row.get("id"))
        response = _text(row["response"])
        return ("" if ident is None else str(ident)), response and strip_response_prefix(response), ref, "swift"
    if "hyp" in row:
        ident = row.get("id")
        if ident is None:
            raise EvalInputError(f"row {index}: plain rows need an `id` (keys: {sorted(row)})")
        return str(ident), _text(row["hyp"]), _text(row.get("ref")), "plain"
    raise EvalInputError(
        f"row {index}: neither a swift infer result (`response`) nor a plain row (`id`, `hyp`, `ref`); keys: {sorted(row)}"
    )


def read_run(path: str | Path, name: str | None = None) -> Run:
    """One result file -> Run. Missing references and duplicate ids are errors naming the lines."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"{path}: no such result file")
    parsed: list[tuple[int, str, str | None, str | None, str]] = []
    try:
        for line_no, row in iter_jsonl(path):
            try:
                parsed.append((line_no, *parse_row(row, line_no)))
            except EvalInputError as error:
                raise EvalInputError(f"{path}:{line_no}: {error}") from None
    except JsonlError as error:  # `path:LINE: not JSON (...)`, not an object, not UTF-8
        raise EvalInputError(str(error)) from None
    if not parsed:
        raise EvalInputError(f"{path}: no rows")
    formats = {entry[4] for entry in parsed}
    if len(formats) > 1:
        raise EvalInputError(f"{path}: mixes swift infer rows and plain rows")

    with_id = [entry for entry in parsed if entry[1]]
    if with_id and len(with_id) != len(parsed):
        missing = [entry[0] for entry in parsed if not entry[1]]
        raise EvalInputError(f"{path}: {len(missing)} rows without an id (lines {_head(missing)}) among rows with ids")
    no_ref = [entry[0] for entry in parsed if not (entry[3] or "").strip()]
    if no_ref:
        raise EvalInputError(
            f"{path}: {len(no_ref)} of {len(parsed)} rows have no reference report (lines {_head(no_ref)}); "
            "swift rows need a `solution` column or a gold assistant turn, plain rows a `ref`"
        )
    pairs = [
        Pair(ident or f"row{position}", hyp or "", ref or "")
        for position, (_, ident, hyp, ref, _) in enumerate(parsed)
    ]
    duplicates = _duplicates(pair.id for pair in pairs)
    if duplicates:
        raise EvalInputError(
            f"{path}: {len(duplicates)} duplicate ids (e.g. {_head(duplicates)}); "
            "swift infer appends to an existing --result_path, so a re-run into the same file duplicates rows"
        )
    settings_file = settings_path(path)
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvalInputError(f"{settings_file}: unreadable decoding settings ({error})") from None
    return Run(name or path.stem, str(path), pairs, formats.pop(), settings)


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for value in values:
        if value in seen:
            repeated[value] = None
        seen.add(value)
    return list(repeated)


def _head(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


# swift infer keeps only `messages`/`images` of a data set row (keeping the rest makes generation
# fail on unknown model kwargs); these columns are put back after inference.
DATASET_COLUMNS: tuple[str, ...] = ("study_id", "subject_id", "split", "solution")


def _gold_answer(row: Mapping[str, Any]) -> str | None:
    messages = row.get("messages") or []
    return messages[-1].get("content") if messages and messages[-1].get("role") == "assistant" else None


def attach_dataset_columns(result_path: str | Path, data_path: str | Path) -> str | None:
    """Copy DATASET_COLUMNS from the data set into swift's result rows, by position.

    Only when both files have the same number of rows and every result's `labels` (the gold
    assistant turn swift strips) equals its data row's assistant turn; returns None when done,
    otherwise why not (the file is then left as swift wrote it and rows are matched by order).
    """
    result_path, data_path = Path(result_path), Path(data_path)
    results, data = (read_jsonl(path) for path in (result_path, data_path))
    if len(results) != len(data):
        return f"{len(results)} result rows for {len(data)} data set rows (sampled or shuffled?)"
    for index, (result, row) in enumerate(zip(results, data)):
        if normalize(result.get("labels") or "") != normalize(_gold_answer(row) or ""):
            return f"row {index}: the result's gold answer is not the data set row's (shuffled?)"
    for result, row in zip(results, data):
        result.update({key: row[key] for key in DATASET_COLUMNS if key in row and key not in result})
    write_jsonl(result_path, results)
    return None


ON_MISMATCH: tuple[str, ...] = ("error", "intersect")  # runs covering different ids: stop, or keep the common ones


@dataclass(frozen=True)
class Alignment:
    runs: list[Run]
    dropped: dict[str, int]  # run name -> pairs left out because other runs lack their id


def align_runs(runs: Sequence[Run], on_mismatch: str = "error") -> Alignment:
    """Put every run on the first run's ids and order.

    Runs must cover the same ids with the same references; with `on_mismatch="intersect"` only
    the common ids are kept and each run's left-out count is returned (and reported).
    """
    if not runs:
        raise EvalInputError("no runs to evaluate")
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be 'error' or 'intersect', not {on_mismatch!r}")
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise EvalInputError(f"run names must be unique, got {names}")
    id_sets = [set(run.ids) for run in runs]
    common = set.intersection(*id_sets)
    if any(ids != common for ids in id_sets):
        problems = [
            f"{run.name}: {len(ids - common)} ids not in every run (e.g. {_head(sorted(ids - common))})"
            for run, ids in zip(runs, id_sets)
            if ids != common
        ]
        if on_mismatch == "error":
            raise EvalInputError(
                "runs cover different ids ("
                + "; ".join(problems)
                + "); evaluate them separately or pass --on-mismatch intersect to score only the common ids"
            )
        if not common:
            raise EvalInputError("runs have no id in common: " + "; ".join(problems))
    order = [ident for ident in runs[0].ids if ident in common]
    aligned: list[Run] = []
    reference = {pair.id: pair.ref for pair in runs[0].pairs}
    for run in runs:
        by_id = {pair.id: pair for pair in run.pairs}
        differing = [ident for ident in order if normalize(by_id[ident].ref) != normalize(reference[ident])]
        if differing:
            raise EvalInputError(
                f"{run.name} and {runs[0].name} have different references for {len(differing)} ids "
                f"(e.g. {_head(differing)}); rows matched by position need files in the same order"
            )
        aligned.append(Run(run.name, run.source, [by_id[ident] for ident in order], run.format, run.settings))
    return Alignment(aligned, {run.name: len(run.pairs) - len(order) for run in runs})


def record_inference(result_path: str | Path, data_path: str | Path, decoding: Mapping[str, Any]) -> tuple[dict[str, Any], Path]:
    """After `swift infer`: attach the data set columns, then write the settings file (last, atomically).

    Returns the settings written and their path (`settings_path(result_path)`).
    """
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    result_path, data_path = Path(result_path), Path(data_path)
    not_attached = attach_dataset_columns(result_path, data_path)
    settings = {**decoding, "data": str(data_path.resolve()), "result": str(result_path.resolve()),
                "rows": len(read_jsonl(result_path)), "ms_swift": installed("ms-swift"),
                "transformers": installed("transformers"),
                "dataset_columns": not_attached or f"attached by row position: {', '.join(DATASET_COLUMNS)}"}
    path = settings_path(result_path)
    write_text_atomic(path, json.dumps(settings, indent=2) + "\n")
    return settings, path
