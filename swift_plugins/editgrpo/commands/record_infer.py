"""`editgrpo record-infer`: what `run/infer.sh` does after `swift infer` (not usually typed by hand).

Puts the data set's columns back into the result rows (`evaluation.results.attach_dataset_columns`)
and writes `<result>.settings.json` (decoding settings, row count, package versions) last, so
its presence means the result file is complete; `editgrpo eval` records it with the metrics.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--result", required=True, type=Path, help="the swift infer result jsonl")
    parser.add_argument("--data", required=True, type=Path, help="the data set jsonl swift infer read")
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapters", default="")
    parser.add_argument("--template", required=True)
    parser.add_argument("--infer-backend", required=True)
    parser.add_argument("--temperature", type=float, required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, required=True)
    parser.add_argument("--max-pixels", default=None)
    parser.add_argument("--min-pixels", default=None)
    parser.add_argument("--wall-seconds", type=int, required=True)
    parser.add_argument("extra_args", nargs=argparse.REMAINDER, help="the extra swift infer arguments, after --")


def run(args: argparse.Namespace) -> int:
    from swift_plugins.editgrpo.evaluation.results import record_inference

    decoding = {"model": args.model, "adapters": args.adapters or None, "template": args.template,
                "infer_backend": args.infer_backend, "temperature": args.temperature,
                "max_new_tokens": args.max_new_tokens, "max_batch_size": args.max_batch_size,
                "max_pixels": args.max_pixels or None, "min_pixels": args.min_pixels or None,
                "extra_args": [a for a in args.extra_args if a != "--"], "wall_seconds": args.wall_seconds}
    settings, path = record_inference(args.result, args.data, decoding)
    if not settings["dataset_columns"].startswith("attached"):
        print(f"infer.sh: data set columns not attached ({settings['dataset_columns']}); editgrpo eval matches rows by "
              "order", file=sys.stderr)
    print(f"infer.sh: {settings['rows']} results in {args.result}; settings in {path}", file=sys.stderr)
    return 0
