"""Sub-commands of the `editgrpo` CLI (see cli.py)."""
