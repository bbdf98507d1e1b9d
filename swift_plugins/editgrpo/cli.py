"""`editgrpo` — what swift itself does not do.

Each sub-command lives in `commands/<name>.py` with `configure(parser)` and `run(args) -> int`;
command modules import nothing heavy at module level, so `editgrpo --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, str] = {
    "edit": "Show the post-rollout edit EditGRPO makes to a generated report.",
    "score": "Score hypothesis/reference report pairs with the clinical reward scorers.",
    "check-weights": "Check that every scorer/analyzer model file is present (exit 1 if not).",
    "convert": "Convert a data set from its native layout to ms-swift jsonl.",
    "eval": "Evaluate swift-infer result files: the paper's metric table, csv/json and a plot.",
    "tiny-model": "Build a tiny random Qwen2.5-VL checkpoint (tests, demo).",
    "demo": "Run the embedded CPU demo (SFT -> EditGRPO/Dr.GRPO -> infer -> eval).",
}


def _module(name: str):
    return importlib.import_module(f"swift_plugins.editgrpo.commands.{name.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="editgrpo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        _module(name).configure(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(_module(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
