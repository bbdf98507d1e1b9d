"""Reading native files defensively: CSV (plain or .gz; UTF-8, or UTF-16/32 with a byte-order mark),
JSON, report text; placeholder images and 8-bit copies of high-bit-depth images.

Bad bytes and malformed rows are counted per reason instead of turning into silently wrong
samples: text is decoded with `surrogateescape`, so a row that is not valid UTF-8 can be
recognised and skipped (`non_utf8_text`) while the rest of the file is still read.
"""
from __future__ import annotations

import codecs
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
_SURROGATE_RE = re.compile("[\ud800-\udfff\ufffd]")  # lone surrogates, and U+FFFD: what they become after templates.report
# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                                        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
PLACEHOLDER_SIZE = 64
# PIL modes of 16-bit (and 32-bit integer or float) grayscale files, e.g. PadChest's PNGs (I;16): PIL's
# convert("RGB"), which swift's and qwen_vl_utils' loaders call, clips them to 255 (an all-white image).
HIGH_BIT_DEPTH_MODES: tuple[str, ...] = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_EIGHT_BIT_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg")  # never high bit depth in PIL: not opened


def find_file(src: Path, *names: str) -> Path | None:
    """The first of `names` (also tried with .gz) that exists under `src`."""
    for name in names:
        for candidate in (src / name, src / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _text_encoding(path: Path, head: bytes) -> str:
    """UTF-8 unless a byte-order mark says UTF-16/32 (Excel's "Unicode text" export). Without a mark,
    NUL bytes in the first line mean UTF-16/32 of unknown byte order: an error that says what to save."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" in head.split(b"\n", 1)[0]:
        raise ConversionError(f"{path}: NUL bytes in the first line: UTF-16 or UTF-32 without a byte-order mark? "
                              "Save it as UTF-8 (or UTF-16 with a byte-order mark).")
    return "utf-8-sig"


def _open_text(path: Path) -> IO[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        encoding = _text_encoding(path, handle.read(4096))
    return opener(path, "rt", encoding=encoding, errors="surrogateescape", newline="")


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


def is_high_bit_depth(path: Path) -> bool:
    """From the file's header (no pixels decoded); a file PIL cannot read is not copied (training's loader reports it)."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() in _EIGHT_BIT_SUFFIXES:
        return False
    try:
        with Image.open(path) as image:
            return image.mode in HIGH_BIT_DEPTH_MODES
    except (UnidentifiedImageError, OSError):
        return False


def write_8bit_copy(source: Path, target: Path) -> None:
    """An 8-bit grayscale PNG of a high-bit-depth image: its own min..max range rescaled linearly to
    0..255, as PadChest users do (the stored range varies per image: a fixed /65535 would turn one
    stored in 800..3900 nearly black). Written under a temporary name and renamed: no half files."""
    import numpy as np
    from PIL import Image

    with Image.open(source) as image:
        pixels = np.asarray(image, dtype=np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    Image.fromarray(np.rint(scaled).astype(np.uint8)).save(partial, format="PNG")
    partial.replace(target)
