"""JSON Lines files: the project's one reader and writer of `.jsonl` (data sets, results, logs).

Reading: one JSON object per line; lines end at "\\n" only (JSON written with ensure_ascii=False
may hold U+2028, U+0085 or form feeds inside strings, which `str.splitlines()` would take for
line ends); blank lines are skipped; every error is a `JsonlError` naming `path:LINE` (not
JSON, not an object, not UTF-8). Writing: `ensure_ascii=False`, one row per line, atomic (a
temporary file in the same directory replaces the target only after the last row), so a
failure half-way (a row that cannot be serialised, a full disk, Ctrl-C) leaves the old file
as it was and no partial file that looks complete.
"""
from __future__ import annotations

import errno
import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

import jsonlines

# json.dumps(row, ensure_ascii=False): stdlib output, the same bytes the hand-written writers produced
_dumps = json.JSONEncoder(ensure_ascii=False).encode


class JsonlError(ValueError):
    """A line of a .jsonl file that is not one JSON object; the message is `path:LINE: why`."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = Path(path), line, reason


class _NumberedLines:
    """The lines of a binary file (split at b"\\n" only), remembering the number of the last one read."""

    def __init__(self, handle) -> None:
        self.handle, self.number = handle, 0

    def __iter__(self) -> Iterator[bytes]:
        for self.number, line in enumerate(self.handle, start=1):
            yield line


def _reason(error: jsonlines.InvalidLineError) -> str:
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"not valid UTF-8 ({cause.reason} at byte {cause.start} of the line)"
    if isinstance(cause, ValueError):
        return f"not JSON ({cause})"
    return str(error)


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of `path`, read lazily.

    Raises JsonlError for a line that is not a JSON object or not UTF-8, OSError for a file
    that cannot be opened.
    """
    path = Path(path)
    with path.open("rb") as handle:
        lines = _NumberedLines(handle)
        reader = jsonlines.Reader(lines, loads=json.loads)  # stdlib json whatever else is installed
        while True:
            try:
                value = reader.read(allow_none=True, skip_empty=True)
            except EOFError:
                return
            except jsonlines.InvalidLineError as error:
                raise JsonlError(path, error.lineno, _reason(error)) from None
            if not isinstance(value, dict):
                kind = "null" if value is None else type(value).__name__
                raise JsonlError(path, lines.number, f"expected a JSON object per line, got {kind}")
            yield lines.number, value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every object of `path`, in file order (see iter_jsonl)."""
    return [row for _, row in iter_jsonl(path)]


@contextmanager
def jsonl_writer(path: str | Path) -> Iterator[jsonlines.Writer]:
    """A jsonlines.Writer (`.write(row)`, `.write_all(rows)`) whose rows replace `path` when the
    block ends normally; on an exception the temporary file is removed and `path` is untouched.
    The parent directory must exist."""
    with atomic_text(path) as handle, jsonlines.Writer(handle, dumps=_dumps) as writer:
        yield writer


def write_text_atomic(path: str | Path, text: str) -> None:
    """`path` replaced by `text` all at once (see `atomic_text`): never a half-written file."""
    with atomic_text(path) as handle:
        handle.write(text)


@contextmanager
def atomic_text(path: str | Path) -> Iterator[IO[str]]:
    """A UTF-8 text handle on a temporary file beside `path` that replaces `path` when the block
    ends normally; on an exception the temporary file is removed and `path` is untouched."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        handle = tmp.open("x", encoding="utf-8", newline="")  # "x": a fresh file with the usual permissions
    except OSError as error:  # e.g. no such directory, not writable: name the target, not the temporary file
        raise type(error)(error.errno, error.strerror, str(path)) from None
    try:
        with handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write `rows` to `path` atomically (see jsonl_writer); returns the number of rows."""
    count = 0
    with jsonl_writer(path) as writer:
        for row in rows:
            writer.write(row)
            count += 1
    return count
