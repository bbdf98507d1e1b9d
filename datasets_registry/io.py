"""Reading native files defensively: CSV (plain or .gz), JSON, report text; placeholder images.

Bad bytes and malformed rows are counted per reason instead of turning into silently wrong
samples: text is decoded with `surrogateescape`, so a row that is not valid UTF-8 can be
recognised and skipped (`non_utf8_text`) while the rest of the file is still read.
"""
from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import IO, Iterator

from datasets_registry.records import ConversionError

# Undecodable bytes (surrogateescape) and lone surrogates from JSON escapes: neither is text.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
PLACEHOLDER_SIZE = 64


def find_file(src: Path, *names: str) -> Path | None:
    """The first of `names` (also tried with .gz) that exists under `src`."""
    for name in names:
        for candidate in (src / name, src / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def has_bad_bytes(*values: str | None) -> bool:
    return any(value and _SURROGATE_RE.search(value) for value in values)


def read_csv(path: Path, required: tuple[str, ...], skipped: Counter,
             columns: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """Rows as dicts (values stripped). Rows with a wrong field count or an empty `required` field
    are counted as `corrupt_row`, rows with undecodable bytes as `non_utf8_text`; a file without
    the `required` or `columns` columns, or one the csv module cannot parse, raises ConversionError."""
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in required + columns if name not in (reader.fieldnames or [])]
        if missing:
            raise ConversionError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        try:
            for row in reader:
                if None in row or any(value is None for value in row.values()):
                    skipped["corrupt_row"] += 1
                    continue
                if has_bad_bytes(*row.values()):
                    skipped["non_utf8_text"] += 1
                    continue
                row = {key: value.strip() for key, value in row.items()}
                if any(not row[name] for name in required):
                    skipped["corrupt_row"] += 1
                    continue
                yield row
        except csv.Error as error:
            raise ConversionError(f"{path}, line {reader.line_num}: unreadable CSV ({error})") from error


def read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ConversionError(f"{path}: not valid UTF-8 at byte {error.start}") from error
    except json.JSONDecodeError as error:
        raise ConversionError(f"{path}: invalid JSON ({error})") from error


def read_report_text(path: Path) -> str:
    """A report file as text; raises UnicodeDecodeError for bytes that are not UTF-8."""
    return path.read_bytes().decode("utf-8")


@functools.lru_cache(maxsize=2)
def _placeholder_bytes(image_format: str) -> bytes:
    """A small grey gradient (an X-ray stand-in), encoded once per format."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((PLACEHOLDER_SIZE, PLACEHOLDER_SIZE)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def write_placeholder_image(path: Path) -> None:
    """Writes a placeholder image in the format the file name asks for (JPEG for .jpg/.jpeg, else PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_placeholder_bytes("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"))
