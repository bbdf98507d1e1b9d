"""Evaluation of generated reports: the paper's metric table (spec §7) over one or more runs.

Pure parts (reading result files, id checks, the reference cleaning, Avg) are plain functions,
testable without any model; the CheXbert corpus F1 over label matrices is `rewards.chexbert.corpus_f1`
(one definition for rewards and evaluation). `evaluate_runs` puts them together with the
`rewards/` scorers; `eval_outputs` writes the files.
"""
from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from swift_plugins.editgrpo.sentences import join_sentences, normalize, split_sentences
from swift_plugins.editgrpo.text_metrics import corpus_bleu, rouge_l, tokenize


@dataclass(frozen=True)
class Column:
    key: str  # key in metrics.json / csv / per_sample
    label: str  # header in the paper's table
    clinical: bool  # part of Avg


# The paper's column order (Avg is computed, not scored), then the lexical extras.
CLINICAL_COLUMNS: tuple[Column, ...] = (
    Column("chexbert_micro_f1_14", "Mi-14", True),
    Column("chexbert_macro_f1_14", "Ma-14", True),
    Column("chexbert_micro_f1_5", "Mi-5", True),
    Column("chexbert_macro_f1_5", "Ma-5", True),
    Column("radgraph_partial_f1", "RadGraph", True),
    Column("ratescore", "RaTE", True),
    Column("green", "GREEN", True),
)
AVG_COLUMN = Column("avg", "Avg", False)
EXTRA_COLUMNS: tuple[Column, ...] = (Column("bleu4", "BLEU-4", False), Column("rouge_l", "ROUGE-L", False))
TABLE_COLUMNS: tuple[Column, ...] = (*CLINICAL_COLUMNS, AVG_COLUMN, *EXTRA_COLUMNS)

# `--metrics` names -> the columns each one fills.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "chexbert": ("chexbert_micro_f1_14", "chexbert_macro_f1_14", "chexbert_micro_f1_5", "chexbert_macro_f1_5"),
    "radgraph": ("radgraph_partial_f1",),
    "ratescore": ("ratescore",),
    "green": ("green",),
    "bleu4": ("bleu4",),
    "rouge_l": ("rouge_l",),
}
MODEL_METRICS: tuple[str, ...] = ("chexbert", "radgraph", "ratescore")  # built by rewards.build_scorers


class EvalInputError(ValueError):
    """A result file or a set of runs that cannot be evaluated as given; the message says why and where."""


# ---------------------------------------------------------------------------------------------
# Reading result files
# ---------------------------------------------------------------------------------------------
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

    swift infer rows: hyp = `response`; ref = the data set's `solution` column when present, else
    swift's `labels` (the gold assistant turn); id = `study_id`, else `id`, else "" (row order).
    Plain rows: `{id, hyp, ref}`.
    """
    if "response" in row:
        ref = _text(row.get("solution")) or _text(row.get("labels"))
        ident = row.get("study_id", row.get("id"))
        return ("" if ident is None else str(ident)), _text(row["response"]), ref, "swift"
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
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvalInputError(f"{path}:{line_no}: not JSON ({error})") from None
            if not isinstance(row, dict):
                raise EvalInputError(f"{path}:{line_no}: expected a JSON object per line")
            try:
                parsed.append((line_no, *parse_row(row, line_no)))
            except EvalInputError as error:
                raise EvalInputError(f"{path}:{line_no}: {error}") from None
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
    settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else None
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


def jsonl_rows(path: Path) -> list[dict]:
    """JSON lines split at "\n" only: JSON written with ensure_ascii=False may hold U+2028 or U+0085 inside strings."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def attach_dataset_columns(result_path: str | Path, data_path: str | Path) -> str | None:
    """Copy DATASET_COLUMNS from the data set into swift's result rows, by position.

    Only when both files have the same number of rows and every result's `labels` (the gold
    assistant turn swift strips) equals its data row's assistant turn; returns None when done,
    otherwise why not (the file is then left as swift wrote it and rows are matched by order).
    """
    result_path, data_path = Path(result_path), Path(data_path)
    results, data = (jsonl_rows(path) for path in (result_path, data_path))
    if len(results) != len(data):
        return f"{len(results)} result rows for {len(data)} data set rows (sampled or shuffled?)"
    for index, (result, row) in enumerate(zip(results, data)):
        if normalize(result.get("labels") or "") != normalize(_gold_answer(row) or ""):
            return f"row {index}: the result's gold answer is not the data set row's (shuffled?)"
    for result, row in zip(results, data):
        result.update({key: row[key] for key in DATASET_COLUMNS if key in row and key not in result})
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text("".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results), encoding="utf-8")
    tmp.replace(result_path)
    return None


# ---------------------------------------------------------------------------------------------
# Aligning runs
# ---------------------------------------------------------------------------------------------
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
    if on_mismatch not in ("error", "intersect"):
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


# ---------------------------------------------------------------------------------------------
# Text cleaning (`--clean reference`)
# ---------------------------------------------------------------------------------------------
_INDICATION_RE = re.compile(r"\bindication:", re.IGNORECASE)
NEAR_DUPLICATE_JACCARD = 0.8
NEAR_DUPLICATE_CONTAINMENT = 0.9


def _near_duplicate(words: frozenset[str], kept: frozenset[str]) -> bool:
    shared = len(words & kept)
    return (
        shared / len(words | kept) > NEAR_DUPLICATE_JACCARD
        or shared / min(len(words), len(kept)) > NEAR_DUPLICATE_CONTAINMENT
    )


def clean_reference_style(text: str) -> str:
    """The reference evaluation's cleaning, applied to hypotheses and references alike.

    Whitespace collapsed, everything from "Indication:" on dropped, sentences of < 2 words
    dropped, and a sentence dropped when its word set nearly repeats an earlier kept one
    (Jaccard > 0.8, or > 90 % of the smaller set shared) — degenerate repetitive generations
    otherwise dominate lexical and entity metrics. Kept sentences end with punctuation.
    """
    text = normalize(text)
    cut = _INDICATION_RE.search(text)
    if cut:
        text = text[: cut.start()]
    kept: list[str] = []
    kept_words: list[frozenset[str]] = []
    for sentence in split_sentences(text):
        tokens = tokenize(sentence)
        if len(tokens) < 2:
            continue
        words = frozenset(tokens)
        if any(_near_duplicate(words, other) for other in kept_words):
            continue
        kept.append(sentence if sentence[-1] in ".!?" else sentence + ".")
        kept_words.append(words)
    return join_sentences(kept)


CLEANERS: dict[str, Callable[[str], str]] = {
    "none": lambda text: text,
    "reference": clean_reference_style,
}


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------
def average_clinical(values: Mapping[str, float | None]) -> tuple[float | None, list[str]]:
    """Avg = mean of the clinical columns that have a value (None when none has); also says which."""
    present = [column.key for column in CLINICAL_COLUMNS if values.get(column.key) is not None]
    if not present:
        return None, []
    return sum(float(values[key]) for key in present) / len(present), present


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


# ---------------------------------------------------------------------------------------------
# Scoring runs
# ---------------------------------------------------------------------------------------------
@dataclass
class MetricOutput:
    corpus: dict[str, float]  # column key -> corpus value
    per_sample: dict[str, list[float]] = field(default_factory=dict)  # per_sample.jsonl keys -> values
    counts: dict[str, int] = field(default_factory=dict)  # e.g. green_unparsed


Progress = Callable[[int], None]  # told how many more pairs are done
PROGRESS_CHUNK = 256  # pairs per scorer call: large enough for batching, small enough for a live progress bar


def _chunks(n: int) -> list[slice]:
    return [slice(start, min(start + PROGRESS_CHUNK, n)) for start in range(0, n, PROGRESS_CHUNK)]


class MetricRunner(ABC):
    """Scores one metric group; one instance serves every run, so reference-side work is shared."""

    @abstractmethod
    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput: ...


class ChexbertRunner(MetricRunner):
    """The four CheXbert columns: corpus micro/macro-F1 over 14 and 5 labels, uncertain -> positive.

    Works on any `rewards.chexbert.LabelScorer` (CheXbert or the rules proxy): labels come from its
    annotations, whose reference side is cached, so later runs reuse the references' labels.
    """

    def __init__(self, scorer: Any):
        self.scorer = scorer

    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        from rewards.chexbert import corpus_f1

        hyp_labels: list[Any] = []
        ref_labels: list[Any] = []
        for part in _chunks(len(hyps)):
            hyp_part, ref_part = self.scorer.annotations(hyps[part], refs[part])
            hyp_labels += hyp_part
            ref_labels += ref_part
            advance(len(hyp_part))
        per_pair = [self.scorer.compare(h, r)[self.scorer.headline] for h, r in zip(hyp_labels, ref_labels)]
        corpus = corpus_f1(np.stack([label.binary for label in hyp_labels]), np.stack([label.binary for label in ref_labels]))
        return MetricOutput(
            {key: float(corpus[key]) for key in METRIC_GROUPS["chexbert"]}, {"chexbert_micro_f1_14": per_pair}
        )


def _score_in_chunks(scorer: Any, hyps: list[str], refs: list[str], advance: Progress) -> tuple[list[float], dict[str, list[float]]]:
    values: list[float] = []
    components: dict[str, list[float]] = {}
    for part in _chunks(len(hyps)):
        result = scorer.score(hyps[part], refs[part])
        if len(result.values) != part.stop - part.start:
            raise RuntimeError(f"{scorer.name}: scorer returned {len(result.values)} values for {part.stop - part.start} pairs")
        values += [float(value) for value in result.values]
        for key, column in result.components.items():
            components.setdefault(key, []).extend(column)
        advance(len(result.values))
    return values, components


class MeanRunner(MetricRunner):
    """Metrics whose corpus value is the mean of the per-pair values (RadGraph partial F1, RaTEScore)."""

    def __init__(self, scorer: Any):
        self.scorer = scorer

    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        values, _ = _score_in_chunks(self.scorer, hyps, refs, advance)
        return MetricOutput({self.scorer.name: mean(values)}, {self.scorer.name: values})


class GreenRunner(MetricRunner):
    """GREEN mean; judge outputs that could not be parsed are counted (they score 0, as upstream)."""

    def __init__(self, scorer: Any):
        self.scorer = scorer

    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        values, components = _score_in_chunks(self.scorer, hyps, refs, advance)
        per_sample = {"green": values, **{f"green_{key}": column for key, column in components.items()}}
        return MetricOutput(
            {"green": mean(values)}, per_sample, {"green_unparsed": sum(1 for parsed in components["parsed"] if not parsed)}
        )


class BleuRunner(MetricRunner):
    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        output = MetricOutput({"bleu4": corpus_bleu(hyps, refs)})
        advance(len(hyps))
        return output


class RougeRunner(MetricRunner):
    def run(self, hyps: list[str], refs: list[str], advance: Progress = lambda n: None) -> MetricOutput:
        values = [rouge_l(hyp, ref) for hyp, ref in zip(hyps, refs)]
        advance(len(hyps))
        return MetricOutput({"rouge_l": mean(values)}, {"rouge_l": values})


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
