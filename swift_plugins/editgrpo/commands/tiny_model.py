"""`editgrpo tiny-model OUT`: write the tiny random Qwen2.5-VL checkpoint used by tests and the demo."""
from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output directory (created if missing)")
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        help="extra text file(s), one report per line, for the tokenizer (IU-XRay reports are always used when present)",
    )


def run(args: argparse.Namespace) -> int:
    from swift_plugins.editgrpo.tiny.model import build_tiny_model

    corpus = [line for path in args.corpus for line in path.read_text(encoding="utf-8").splitlines()]
    print(build_tiny_model(args.out, corpus=corpus or None))
    return 0
