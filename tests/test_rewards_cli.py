"""`editgrpo score` and `editgrpo check-weights`."""
from __future__ import annotations

import json

import pytest

from swift_plugins.editgrpo.cli import main


def test_score_rules_backend_writes_one_row_per_pair(tmp_path, iu_findings, capsys):
    hyps = [iu_findings[0].replace("\n", "\\n"), "", "ok", iu_findings[2]]
    refs = [iu_findings[0], iu_findings[1], iu_findings[1], iu_findings[3]]
    (tmp_path / "h.txt").write_text("\n".join(hyps) + "\n")
    (tmp_path / "r.txt").write_text("\n".join(refs) + "\n")
    out = tmp_path / "out" / "scores.jsonl"
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--out", str(out),
                 "--backend", "rules", "--batch-size", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    for row in rows:
        assert row["backend"] == "rules"
        parts = [row["chexbert_micro_f1_14"], row["radgraph_partial_f1"], row["ratescore"]]
        assert row["clinical"] == sum(parts)
    assert rows[0]["clinical"] > rows[1]["clinical"]
    assert "PROXIES" in capsys.readouterr().out


def test_score_subset_of_metrics_and_mismatched_files(tmp_path, iu_findings):
    (tmp_path / "h.txt").write_text(iu_findings[0] + "\n")
    (tmp_path / "r.txt").write_text(iu_findings[1] + "\n" + iu_findings[2] + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--out", str(out), "--backend", "rules"]) == 1
    (tmp_path / "r.txt").write_text(iu_findings[1] + "\n")
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--out", str(out),
                 "--backend", "rules", "--metrics", "chexbert"]) == 0
    row = json.loads(out.read_text())
    assert set(row) == {"index", "chexbert_micro_f1_14", "clinical", "backend"}


def test_score_real_backend_without_weights_exits_1(tmp_path, capsys):
    (tmp_path / "h.txt").write_text("No effusion.\n")
    (tmp_path / "none").mkdir()  # an existing models dir without the files
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "h.txt"), "--out", str(tmp_path / "o"),
                 "--backend", "real", "--models-dir", str(tmp_path / "none")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("editgrpo score: error: ") and "chexbert.pth" in error and not (tmp_path / "o").exists()


def test_check_weights(tmp_path, capsys):
    assert main(["check-weights", "--models-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "radgraph-xl.tar.gz" in out and "Angelakeke/RaTE-NER-Deberta" in out
    from rewards.testing import build_chexbert

    build_chexbert(tmp_path, ["No acute cardiopulmonary abnormality.", "Heart size is normal."])
    assert main(["check-weights", "--models-dir", str(tmp_path), "--metrics", "chexbert"]) == 0
    assert "ok  chexbert" in capsys.readouterr().out


def test_score_pairs_lines_at_newlines_only(tmp_path):
    """Form feeds and U+2028 inside a report are not line ends: the pairs stay aligned."""
    (tmp_path / "h.txt").write_text("Heart size normal.\x0cNo effusion.\nSecond report.\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("Heart size normal.\u2028No effusion.\nSecond report.", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--out", str(out),
                 "--backend", "rules"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["index"] for row in rows] == [0, 1]


def _score(hyps, refs, out, *extra) -> int:
    return main(["score", "--hyps", str(hyps), "--refs", str(refs), "--out", str(out), "--backend", "rules", *extra])


def test_interrupted_score_leaves_the_old_output(tmp_path, iu_findings, monkeypatch):
    """--out is replaced only once every pair is scored: an interrupted run leaves the old file, no partial one."""
    import rewards

    (tmp_path / "h.txt").write_text("\n".join(iu_findings[:6]) + "\n")
    (tmp_path / "r.txt").write_text("\n".join(iu_findings[6:12]) + "\n")
    out = tmp_path / "scores.jsonl"
    out.write_text('{"index": 0, "from": "the last run"}\n')
    real = rewards.build_from_config

    class InterruptedAtSecondBatch:
        def __init__(self, scorer):
            self.name, self.scorer, self.batches = scorer.name, scorer, 0

        def score(self, hyps, refs):
            self.batches += 1
            if self.batches == 2:
                raise KeyboardInterrupt
            return self.scorer.score(hyps, refs)

    monkeypatch.setattr(rewards, "build_from_config", lambda config, metrics: {
        name: InterruptedAtSecondBatch(scorer) for name, scorer in real(config, metrics).items()})
    with pytest.raises(KeyboardInterrupt):
        _score(tmp_path / "h.txt", tmp_path / "r.txt", out, "--batch-size", "2")
    assert out.read_text() == '{"index": 0, "from": "the last run"}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["h.txt", "r.txt", "scores.jsonl"]  # no temporary file


def test_out_equal_to_hyps_scores_the_input_before_replacing_it(tmp_path, iu_findings):
    """The input is read whole before --out is written, so --out == --hyps cannot destroy it first."""
    hyps, refs = tmp_path / "h.txt", tmp_path / "r.txt"
    hyps.write_text("\n".join(iu_findings[:5]) + "\n")
    refs.write_text("\n".join(iu_findings[5:10]) + "\n")
    assert _score(hyps, refs, tmp_path / "separate.jsonl") == 0
    assert _score(hyps, refs, hyps) == 0
    assert hyps.read_text() == (tmp_path / "separate.jsonl").read_text()
    assert len(hyps.read_text().splitlines()) == 5


def test_score_bad_out_fails_before_the_scorers_are_built(tmp_path, iu_findings, capsys, monkeypatch):
    """A bad --out used to be found only after the scorers' models were loaded."""
    import rewards

    built = []
    monkeypatch.setattr(rewards, "build_from_config", lambda *args: built.append(args))
    (tmp_path / "h.txt").write_text(iu_findings[0] + "\n")
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert _score(tmp_path / "h.txt", tmp_path / "h.txt", taken / "scores.jsonl") == 1
    assert capsys.readouterr().err == \
        f"editgrpo score: error: {taken / 'scores.jsonl'}: {taken} exists and is not a directory\n"
    (tmp_path / "folder").mkdir()
    assert _score(tmp_path / "h.txt", tmp_path / "h.txt", tmp_path / "folder") == 1
    assert capsys.readouterr().err == f"editgrpo score: error: {tmp_path / 'folder'}: Is a directory\n"
    assert built == [] and taken.read_text() == "a file"
