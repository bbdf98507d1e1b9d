"""One error convention for every `editgrpo` command (cli.main).

A mistake in the arguments: usage and `editgrpo <command>: error: ...` on stderr, exit 2. A
failure (missing or bad input file, unwritable output, missing weights): one
`editgrpo <command>: error: <message>` line on stderr, exit 1, no traceback.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from swift_plugins.editgrpo.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]


def failure(capsys, *argv: str) -> str:
    """Runs a command that must fail with exit 1; returns its one stderr line."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"editgrpo {argv[0]}: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def usage_error(capsys, *argv: str) -> str:
    """Runs a command that must stop with exit 2 and its usage; returns stderr."""
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: editgrpo {argv[0]} ") and f"\neditgrpo {argv[0]}: error: " in err, err
    return err


def test_score_missing_mismatched_and_unwritable_files(tmp_path, capsys):
    missing = tmp_path / "absent.txt"
    out = tmp_path / "scores.jsonl"
    assert failure(capsys, "score", "--hyps", str(missing), "--refs", str(missing), "--out", str(out)) == \
        f"editgrpo score: error: {missing}: No such file or directory"
    (tmp_path / "h.txt").write_text("No effusion.\n")
    (tmp_path / "r.txt").write_text("No effusion.\nHeart normal.\n")
    assert failure(capsys, "score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"),
                   "--out", str(out), "--backend", "rules").endswith("they must pair up")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    assert "latin1.txt: not valid UTF-8" in failure(capsys, "score", "--hyps", str(tmp_path / "latin1.txt"),
                                                    "--refs", str(tmp_path / "h.txt"), "--out", str(out))
    (tmp_path / "out_dir").mkdir()
    assert failure(capsys, "score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "h.txt"),
                   "--out", str(tmp_path / "out_dir"), "--backend", "rules") == \
        f"editgrpo score: error: {tmp_path / 'out_dir'}: Is a directory"
    assert not out.exists()
    usage_error(capsys, "score", "--hyps", str(missing), "--refs", str(missing))  # --out missing: argparse


def test_score_input_is_a_directory(tmp_path, capsys):
    (tmp_path / "h.txt").write_text("No effusion.\n")
    assert failure(capsys, "score", "--hyps", str(tmp_path), "--refs", str(tmp_path / "h.txt"), "--out",
                   str(tmp_path / "o.jsonl"), "--backend", "rules") == f"editgrpo score: error: {tmp_path}: Is a directory"
    assert not (tmp_path / "o.jsonl").exists()


def test_edit_refuses_an_unknown_editgrpo_variable(monkeypatch, capsys):
    """Every entry point reads the one validated settings object: a typo is not ignored."""
    monkeypatch.setenv("EDITGRPO_TAUU", "0.9")
    err = usage_error(capsys, "edit", "--gen", "No effusion.", "--ref", "Small effusion.")
    assert "EDITGRPO_TAUU: unknown variable; did you mean EDITGRPO_TAU?" in err


def test_eval_bad_result_files_and_bad_arguments(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "hyp": "a", "ref": "a"}\n{oops\n', encoding="utf-8")
    out = tmp_path / "out"
    assert failure(capsys, "eval", str(bad), "--out", str(out), "--metrics", "rouge_l", "--no-progress").startswith(
        f"editgrpo eval: error: {bad}:2: not JSON (")
    bad.write_bytes(b'{"id": "1", "hyp": "caf\xe9", "ref": "a"}\n')
    assert f"{bad}:1: not valid UTF-8" in failure(capsys, "eval", str(bad), "--out", str(out), "--metrics", "rouge_l")
    assert failure(capsys, "eval", str(tmp_path / "absent.jsonl"), "--out", str(out), "--metrics", "rouge_l") == \
        f"editgrpo eval: error: {tmp_path / 'absent.jsonl'}: no such result file"
    assert not out.exists()
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "1", "hyp": "a b", "ref": "a b"}\n', encoding="utf-8")
    (tmp_path / "taken").write_text("a file, not a folder")
    assert "taken" in failure(capsys, "eval", str(good), "--out", str(tmp_path / "taken"), "--metrics", "rouge_l",
                              "--no-progress")
    assert "unknown metrics ['bleu']" in usage_error(capsys, "eval", str(good), "--out", str(out), "--metrics", "bleu")
    assert "2 names for 1 result files" in usage_error(capsys, "eval", str(good), "--out", str(out), "--names", "a,b")


def test_tiny_model_missing_corpus(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    assert failure(capsys, "tiny-model", str(tmp_path / "model"), "--corpus", str(corpus)) == \
        f"editgrpo tiny-model: error: {corpus}: No such file or directory"
    assert not (tmp_path / "model").exists()


def test_demo_out_is_an_existing_file(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("precious")
    assert "exists and is not a directory" in failure(capsys, "demo", "--out", str(taken), "--profile", "quick")
    assert taken.read_text() == "precious"


def test_demo_numeric_options_are_checked_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    err = usage_error(capsys, "demo", "--out", str(out), "--profile", "quick", "--num-generations", "0", "--rl-lr", "nan")
    assert "error: invalid demo settings: num_generations=0: must be >= 2; rl_lr=nan: must be a finite number > 0\n" in err
    assert "--heartbeat 0.0: must be a finite number of seconds > 0" in usage_error(
        capsys, "demo", "--out", str(out), "--profile", "quick", "--heartbeat", "0")
    assert not out.exists()


def test_convert_missing_src(tmp_path, capsys):
    assert failure(capsys, "convert", "iu-xray", "--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"),
                   "--quiet").endswith("not a directory")


def test_check_weights_and_edit(tmp_path, capsys):
    assert main(["check-weights", "--models-dir", str(tmp_path), "--metrics", "chexbert"]) == 1
    captured = capsys.readouterr()
    assert "chexbert.pth" in captured.out  # the report is the command's output
    assert captured.err == "editgrpo check-weights: error: model files are missing (listed above)\n"
    assert "tau must be in" in usage_error(capsys, "edit", "--gen", "a", "--ref", "b", "--tau", "2")


def test_exit_codes_of_the_console_command(tmp_path):
    """`python -m swift_plugins.editgrpo.cli`: the exit status reaches the shell, no traceback."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1]\n", encoding="utf-8")

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "swift_plugins.editgrpo.cli", *argv], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)

    failed = cli("eval", str(bad), "--out", str(tmp_path / "out"), "--metrics", "rouge_l")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == f"editgrpo eval: error: {bad}:1: expected a JSON object per line, got list\n"
    wrong = cli("eval", str(bad), "--out", str(tmp_path / "out"), "--metrics", "bleu")
    assert wrong.returncode == 2 and "editgrpo eval: error: unknown metrics" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert cli("convert", "iu-xray", "--out", str(tmp_path)).returncode == 2  # --src missing: argparse
