"""`editgrpo` — what swift itself does not do.

Each sub-command lives in `commands/<name>.py` with `configure(parser)` and `run(args) -> int`;
command modules import nothing heavy at module level, so `editgrpo --help` stays fast.

Exit status, the same for every command: 0 success; 2 a mistake in the arguments (argparse's
usage errors, `commands.UsageError`, invalid settings: usage and message on stderr); 1 a failure
(`commands.CommandError`, a missing/unreadable/unwritable file, a bad input file, missing
weights: one `editgrpo <command>: error: <message>` line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from swift_plugins.editgrpo.commands import CommandError, UsageError

COMMANDS: dict[str, str] = {
    "edit": "Show the post-rollout edit EditGRPO makes to a generated report.",
    "score": "Score hypothesis/reference report pairs with the clinical reward scorers.",
    "check-weights": "Check that every scorer/analyzer model file is present (exit 1 if not).",
    "convert": "Convert a data set from its native layout to ms-swift jsonl.",
    "eval": "Evaluate swift-infer result files: the paper's metric table, csv/json and a plot.",
    "record-infer": "After swift infer (run/infer.sh): attach the data set columns and record the settings.",
    "tiny-model": "Build a tiny random Qwen2.5-VL checkpoint (tests, demo).",
    "arena": "Compare RL methods over seeds on the embedded task, with confidence intervals (arena_out/).",
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
        command_parser.set_defaults(command_parser=command_parser)  # main() prints its usage on a UsageError
    return parser


def error_kinds() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors: exit 2, failures: exit 1) among the exceptions a command raises; anything
    else is a bug and keeps its traceback. Imported only once a command has raised."""
    from datasets_registry.jsonl import JsonlError
    from datasets_registry.records import ConversionError
    from rewards.config import SettingsError
    from swift_plugins.editgrpo.evaluation.results import EvalInputError
    from swift_plugins.editgrpo.tiny.stages import StageError

    usage = (UsageError, SettingsError)  # SettingsError: an invalid flag or EDITGRPO_* value
    # OSError: missing/unreadable/unwritable files, rewards.paths.MissingWeightsError
    failures = (CommandError, OSError, JsonlError, ConversionError, EvalInputError, StageError)
    return usage, failures


def error_message(error: BaseException) -> str:
    """`path: reason` for an OSError about a file (not `[Errno 2] ...`); else the error's own text."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        target = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else error.filename
        return f"{target}: {error.strerror}"
    return str(error) or type(error).__name__


class UsageExit(SystemExit):
    """SystemExit(2) of a usage error found by a command; unlike argparse's, str() is the message."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse's usage errors: usage + message on stderr, SystemExit(2)
    try:
        return int(_module(args.command).run(args) or 0)
    except Exception as error:
        usage, failures = error_kinds()
        if not isinstance(error, usage + failures):
            raise
        message = error_message(error)
        if isinstance(error, usage):  # the same output as argparse's own usage errors
            args.command_parser.print_usage(sys.stderr)
            print(f"{args.command_parser.prog}: error: {message}", file=sys.stderr)
            raise UsageExit(message) from None
        print(f"editgrpo {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
