"""Sub-commands of the `editgrpo` CLI (see cli.py), and the errors they raise.

Convention (cli.main): a mistake in the arguments exits 2 with the usage and the message on
stderr (argparse's own errors; `UsageError` and invalid settings for what only `run` can
check); a failure (`CommandError`, a missing/unreadable/unwritable file, a bad input file,
missing weights) prints one `editgrpo <command>: error: <message>` line on stderr and exits 1,
without a traceback.
"""
from __future__ import annotations


class CommandError(Exception):
    """A failure: cli.main prints `editgrpo <command>: error: <message>` on stderr and returns 1."""


class UsageError(CommandError):
    """A mistake in the arguments that only `run` can see: cli.main prints the usage and
    `editgrpo <command>: error: <message>` on stderr and exits 2 (`cli.UsageExit`), like argparse."""
