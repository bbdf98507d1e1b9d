"""`editgrpo eval RESULT.jsonl [...] --out DIR`: the paper's metric table for one or more runs.

Reads `swift infer` result files (or plain `{id, hyp, ref}` jsonl), scores every run with the
same scorer instances (reference-side work is shared across runs) and writes metrics.json,
metrics.csv, per_sample.jsonl, metrics.md and metrics.png into DIR. DIR is checked before any
scoring, and the five files replace earlier ones together or not at all (`staged_dir`).
"""
from __future__ import annotations

import argparse
import sys

from rewards.config import BACKENDS
from swift_plugins.editgrpo.commands import CommandError, UsageError
from swift_plugins.editgrpo.evaluation.columns import METRIC_GROUPS
from swift_plugins.editgrpo.evaluation.results import ON_MISMATCH
from swift_plugins.editgrpo.evaluation.text import CLEANERS

DEFAULT_METRICS = ",".join(METRIC_GROUPS)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", help="swift infer result jsonl files (or plain {id, hyp, ref} jsonl)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--names", help="comma-separated run names, one per file (default: file stems, with the folder where they collide)")
    parser.add_argument(
        "--metrics", default=DEFAULT_METRICS,
        help=f"comma-separated metric groups (default {DEFAULT_METRICS}); green is skipped with a note when no judge is configured",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default=None,
        help="clinical scorers: real models, or the offline rule-based proxies (default: $EDITGRPO_REWARD_BACKEND or real)",
    )
    parser.add_argument(
        "--clean", choices=tuple(CLEANERS), default="none",
        help="reference = the reference evaluation's cleaning of both texts (cut at 'Indication:', drop <2-word "
        "and near-duplicate sentences); none = score the texts as written (default)",
    )
    parser.add_argument(
        "--on-mismatch", choices=ON_MISMATCH, default="error",
        help="runs covering different ids: stop (default) or score only the common ids and report the rest",
    )
    parser.add_argument("--models-dir", help="scorer weights directory (default: $EDITGRPO_MODELS_DIR)")
    parser.add_argument("--device", help="device for the scorer models and a local GREEN judge (default: $EDITGRPO_DEVICE or auto)")
    parser.add_argument("--batch-size", type=int, help="scorer batch size (default: $EDITGRPO_BATCH_SIZE or 32)")
    parser.add_argument("--green-model", help="local GREEN judge directory (or $EDITGRPO_GREEN_DIR / $EDITGRPO_MODELS_DIR/GREEN-radllama2-7b)")
    parser.add_argument("--green-endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (or $EDITGRPO_GREEN_ENDPOINT)")
    parser.add_argument("--green-endpoint-model", help="model name served at --green-endpoint (or $EDITGRPO_GREEN_ENDPOINT_MODEL)")
    parser.add_argument("--green-max-new-tokens", type=int, default=1024, help="judge answer length limit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parse_metrics(text: str) -> tuple[str, ...]:
    metrics = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in metrics if name not in METRIC_GROUPS]
    if unknown or not metrics:
        raise UsageError(f"unknown metrics {unknown}; choose from {', '.join(METRIC_GROUPS)}")
    return metrics


def default_names(paths: list[str]) -> list[str]:
    """File stems; `parent/stem` where stems collide (runs/sft/result.jsonl, runs/grpo/result.jsonl)."""
    from pathlib import Path

    stems = [Path(path).stem for path in paths]
    return [
        f"{Path(path).parent.name}/{stem}" if stems.count(stem) > 1 else stem for path, stem in zip(paths, stems)
    ]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rewards.config import RewardConfig
    from swift_plugins.editgrpo.evaluation.outputs import markdown_table, output_paths, staged_dir, write_outputs
    from swift_plugins.editgrpo.evaluation.runners import build_runners
    from swift_plugins.editgrpo.evaluation.results import EvalInputError, read_run
    from swift_plugins.editgrpo.evaluation.table import EvalSettings, evaluate_runs

    metrics = _parse_metrics(args.metrics)
    names = [name.strip() for name in args.names.split(",")] if args.names else default_names(args.results)
    if len(names) != len(args.results):
        raise UsageError(f"{len(names)} names for {len(args.results)} result files")
    try:
        reward = RewardConfig.from_env(backend=args.backend, models_dir=args.models_dir, device=args.device,
                                       batch_size=args.batch_size, green_dir=args.green_model,
                                       green_endpoint=args.green_endpoint, green_endpoint_model=args.green_endpoint_model)
        runs = [read_run(path, name) for path, name in zip(args.results, names)]
        with staged_dir(Path(args.out)) as stage:  # a bad --out fails here, before any model is loaded
            runners, notes, described = build_runners(metrics, reward, green_max_new_tokens=args.green_max_new_tokens,
                                                      n_references=len({pair.ref for run in runs for pair in run.pairs}))
            settings = EvalSettings(tuple(runners), reward.backend, args.clean, args.on_mismatch)
            result = evaluate_runs(runs, settings, runners, notes, progress=not args.no_progress)
            write_outputs(result, stage, {"requested_metrics": list(metrics), **described})
    except (EvalInputError, FileNotFoundError, ValueError) as error:  # incl. MissingWeightsError, GREEN settings
        from rewards.config import SettingsError

        if isinstance(error, (EvalInputError, FileNotFoundError, SettingsError)):
            raise  # cli.main reports it: exit 1 (bad input, missing weights) or 2 (invalid settings)
        raise CommandError(str(error)) from error
    for note in notes:
        print(f"editgrpo eval: {note}", file=sys.stderr)
    paths = output_paths(Path(args.out))
    print(markdown_table(result), end="")
    print("\n" + "\n".join(f"{kind}: {path}" for kind, path in paths.items()))
    return 0
