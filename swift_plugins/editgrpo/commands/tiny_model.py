"""`editgrpo tiny-model OUT [--family F]`: write a tiny random checkpoint of a policy family (tests, the demo)."""
from __future__ import annotations

import argparse
from pathlib import Path

from swift_plugins.editgrpo.commands import CommandError
from templates.families import DEFAULT_FAMILY, FAMILIES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output directory (created if missing)")
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        help="extra text file(s), one report per line, for the tokenizer (IU-XRay reports are always used when present)",
    )
    parser.add_argument("--family", choices=list(FAMILIES), default=DEFAULT_FAMILY,
                        help=f"architecture of the checkpoint (default {DEFAULT_FAMILY}, the paper's); templates/families.py")


def _read_corpus(path: Path) -> list[str]:
    """The lines of a --corpus file; a missing file is reported by cli.main (exit 1)."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise CommandError(f"--corpus {path}: not valid UTF-8 ({error.reason} at byte {error.start})") from None


def run(args: argparse.Namespace) -> int:
    from swift_plugins.editgrpo.tiny.model import build_tiny_model

    corpus = [line for path in args.corpus for line in _read_corpus(path)]
    print(build_tiny_model(args.out, corpus=corpus or None, family=args.family))
    return 0
