"""Placeholder until this command lands (owner: see the issue); replaced, not extended."""
import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise SystemExit("editgrpo: this command is not implemented yet")
