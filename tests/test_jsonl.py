"""datasets_registry.jsonl: the one reader/writer of .jsonl files."""
from __future__ import annotations

import json

import pytest

from datasets_registry.jsonl import JsonlError, iter_jsonl, jsonl_writer, read_jsonl, write_jsonl


def test_round_trip_skips_blank_lines_and_numbers_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    assert write_jsonl(path, [{"id": 1, "text": "Cœur normal."}, {"id": 2, "text": None}]) == 2
    assert path.read_text(encoding="utf-8") == '{"id": 1, "text": "Cœur normal."}\n{"id": 2, "text": null}\n'
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\r\n', encoding="utf-8")
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    path.write_text("", encoding="utf-8")
    assert read_jsonl(path) == []


def test_lines_end_at_newline_only(tmp_path):
    """U+2028, U+0085 and form feeds inside strings (ensure_ascii=False) are not line ends."""
    rows = [{"response": "Heart normal.\u2028Lungs clear.\x85"}, {"response": "a\x0cb\rc"}]
    path = tmp_path / "r.jsonl"
    write_jsonl(path, rows)
    assert "\u2028" in path.read_text(encoding="utf-8")  # written unescaped
    assert read_jsonl(path) == rows
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    assert [number for number, _ in iter_jsonl(path)] == [1, 2]


@pytest.mark.parametrize("content, message", [
    ('{"a": 1}\n{not json\n', r"bad.jsonl:2: not JSON \(Expecting property name"),
    ('{"a": 1}\n\n[1, 2]\n', r"bad.jsonl:3: expected a JSON object per line, got list"),
    ("null\n", r"bad.jsonl:1: expected a JSON object per line, got null"),
    ('{"a": 1}\n"text"\n', r"bad.jsonl:2: expected a JSON object per line, got str"),
])
def test_errors_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JsonlError, match=message) as caught:
        read_jsonl(path)
    assert isinstance(caught.value, ValueError) and caught.value.path == path


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(JsonlError, match=r"latin1.jsonl:2: not valid UTF-8") as caught:
        read_jsonl(path)
    assert caught.value.line == 2


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_jsonl(tmp_path / "absent.jsonl")


def test_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"old": True}])
    before = path.read_bytes()
    with pytest.raises(TypeError):  # the second row cannot be serialised: the first was already written
        write_jsonl(path, [{"new": 1}, {"new": object()}])
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate fails when the text is encoded
        write_jsonl(path, [{"new": 1}, {"new": "\udcff"}])

    def rows():
        yield {"new": 1}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, rows())
    with pytest.raises(RuntimeError), jsonl_writer(path) as writer:
        writer.write({"new": 1})
        raise RuntimeError("stop")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left behind


def test_write_creates_nothing_until_done_and_names_the_target_on_errors(tmp_path):
    path = tmp_path / "new.jsonl"
    with jsonl_writer(path) as writer:
        writer.write({"a": 1})
        assert not path.exists()
    assert read_jsonl(path) == [{"a": 1}]
    with pytest.raises(FileNotFoundError, match="missing/x.jsonl"):
        write_jsonl(tmp_path / "missing" / "x.jsonl", [])
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        write_jsonl(tmp_path, [])
