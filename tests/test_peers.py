"""The gold-guided peers (swift_plugins/editgrpo/peers.py): METHOD resolution, the preflight of their
data and flags, and (slow) real `swift rlhf` runs of every peer and combination on the tiny model,
each showing its own swift metrics in logging.jsonl."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from swift_plugins.editgrpo.peers import (PEER_FLAGS, PEER_METHODS, REFUSED, TEACHER_COLUMN, PeerError, check_chord,
                                          check_rows, dataset_rows, main, preflight, resolve_method, teacher_signal)

CHORD_SETTINGS = dict(chord_sft_dataset=["sft.jsonl"], chord_sft_per_device_train_batch_size=1, chord_mu_warmup_steps=0,
                      chord_mu_decay_steps=200, chord_mu_peak=0.9, chord_mu_valley=0.05)


def swift_args(**overrides):
    """The fields of swift's GRPO config the preflight reads, at swift's defaults."""
    return SimpleNamespace(**{"advantage_reweight": None, "sdar_loss_coef": 0.0, "teacher_kl_coef": 1.0,
                              "chord_sft_dataset": [], **overrides})


def row(teacher: str | None = "<image><image>prompt\nREFERENCE FINDINGS: gold", images=("/a.png", "/b.png")) -> dict:
    out = {"messages": [{"role": "user", "content": "<image><image>prompt"}], "images": list(images), "solution": "gold"}
    if teacher is not None:
        out[TEACHER_COLUMN] = teacher
    return out


# ----------------------------------------------------------------------------- METHOD

def test_every_covered_method_resolves_to_edits_and_its_peers_flags():
    for method in PEER_METHODS:
        run = resolve_method(method, "data.jsonl")
        mechanism = method.removeprefix("editgrpo+")
        assert run.edits == method.startswith("editgrpo+") and run.peers == (mechanism,)
        assert run.flags[:len(PEER_FLAGS[mechanism])] == PEER_FLAGS[mechanism]
        assert run.teacher == (mechanism != "chord")
        assert ("--chord_sft_dataset" in run.flags) == (mechanism == "chord")


def test_compatible_peers_compose_and_refused_pairs_say_why():
    run = resolve_method("editgrpo+chord+rlsd", "d")
    assert run.edits and set(run.peers) == {"chord", "rlsd"} and run.teacher
    for pair, reason in REFUSED.items():
        with pytest.raises(PeerError) as error:
            resolve_method("+".join(sorted(pair)))
        assert reason in str(error.value)
    for bad in ("grpo", "editgrpo", "rlsd+rlsd", ""):
        with pytest.raises(PeerError):
            resolve_method(bad)
    with pytest.raises(PeerError, match="gold SFT data"):
        resolve_method("chord")


def test_teacher_signal_follows_swifts_precedence():
    assert teacher_signal(swift_args(teacher_kl_coef=0)) is None
    assert teacher_signal(swift_args()) == "opd"  # swift's default coefficient: the column alone is OPD-RL
    assert teacher_signal(swift_args(sdar_loss_coef=0.1)) == "sdar"
    assert teacher_signal(swift_args(advantage_reweight="rlsd", teacher_kl_coef=0)) == "rlsd"


# ----------------------------------------------------------------------------- rows and flags

def test_rows_without_a_usable_teacher_prompt_are_refused_with_the_fix():
    check_rows([row(), row()], "RLSD", "d.jsonl")
    check_rows([], "RLSD", "d.jsonl")
    with pytest.raises(PeerError) as error:
        check_rows([row(), row(None), row("  ")], "RLSD (--advantage_reweight rlsd)", "d.jsonl")
    assert all(part in str(error.value) for part in ("`teacher_prompt` column", "[1, 2]", "d.jsonl", "editgrpo convert"))
    with pytest.raises(PeerError, match="1 <image> tag"):
        check_rows([row("<image>prompt and gold")], "SDAR", "d.jsonl")  # swift keeps both images for the teacher


def test_chord_needs_its_batch_size_and_mu_schedule():
    check_chord(swift_args(**CHORD_SETTINGS))
    check_chord(swift_args())  # no CHORD
    with pytest.raises(PeerError) as error:
        check_chord(swift_args(**{**CHORD_SETTINGS, "chord_mu_peak": None, "chord_sft_per_device_train_batch_size": None}))
    assert "--chord_sft_per_device_train_batch_size, --chord_mu_peak" in str(error.value)


def test_preflight_drops_an_unread_column_and_refuses_a_missing_one():
    from datasets import Dataset

    with_column = Dataset.from_list([row(), row()])
    without = Dataset.from_list([row(None), row(None)])
    kwargs = {"args": swift_args(teacher_kl_coef=0), "train_dataset": with_column, "eval_dataset": with_column}
    assert preflight(kwargs) is None
    assert TEACHER_COLUMN not in kwargs["train_dataset"].column_names + kwargs["eval_dataset"].column_names
    assert kwargs["train_dataset"]["solution"] == ["gold", "gold"]
    for args in (swift_args(), swift_args(advantage_reweight="rlsd"), swift_args(sdar_loss_coef=0.1)):
        kwargs = {"args": args, "train_dataset": with_column}
        assert preflight(kwargs) == teacher_signal(args)
        assert TEACHER_COLUMN in kwargs["train_dataset"].column_names  # read by the peer: kept
    for args in (swift_args(advantage_reweight="rlsd"), swift_args(sdar_loss_coef=0.1)):
        with pytest.raises(PeerError, match="teacher_prompt"):
            preflight({"args": args, "train_dataset": without})
    assert preflight({"args": swift_args(), "train_dataset": without}) == "opd"  # swift then runs plain GRPO
    kwargs = {"args": swift_args(teacher_kl_coef=0), "train_dataset": with_column, "teacher_model": object()}
    assert preflight(kwargs) == "explicit" and TEACHER_COLUMN in kwargs["train_dataset"].column_names
    with pytest.raises(PeerError, match="CHORD"):
        preflight({"args": swift_args(chord_sft_dataset=["x"]), "train_dataset": with_column})


def test_dataset_rows_reads_paths_and_registered_names(tmp_path, monkeypatch):
    from datasets_registry import ConversionError

    (tmp_path / "iu_xray").mkdir()
    (tmp_path / "iu_xray" / "test.jsonl").write_text("".join(json.dumps(row()) + "\n" for _ in range(20)))
    monkeypatch.setenv("EDITGRPO_DATA_DIR", str(tmp_path))
    rows, source = dataset_rows("iu_xray_editgrpo:test#5")
    assert len(rows) == 8 and source == str(tmp_path / "iu_xray" / "test.jsonl")
    assert dataset_rows(str(tmp_path / "iu_xray" / "test.jsonl"))[0] == rows
    assert dataset_rows("AI-MO/NuminaMath-TIR") is None  # not ours to read
    with pytest.raises(ConversionError):
        dataset_rows("iu_xray_editgrpo")  # train.jsonl not converted
    assert main(["rlsd", "--dataset", "iu_xray_editgrpo"]) == 2


# ----------------------------------------------------------------------------- real swift runs

# Each method's own swift metrics (RLSD: its lambda; SDAR: its gate statistics and loss; OPD-RL: the
# teacher gap; CHORD logs none in swift 4.6, so the plugin's μ from swift's schedule) and what must be absent.
OWN_METRICS = {
    "rlsd": {"rlsd_lambda", "teacher_kl"},
    "sdar": {"sdar/gate_mean", "sdar/gate_active_ratio", "sdar/teacher_gap_mean", "sdar/loss", "sdar/coef", "teacher_kl"},
    "opd": {"teacher_kl"},
    "chord": {"editgrpo/chord_mu"},
}
ALL_PEER_METRICS = set().union(*OWN_METRICS.values())


@pytest.fixture(scope="module")
def teacher_data(tmp_path_factory):
    """Four synthetic studies through the project's writer: rows with `teacher_prompt`, 56-pixel views."""
    from datasets_registry.synthetic.writer import generate
    from swift_plugins.editgrpo.tiny.swift_run import IMAGE_SIZE

    return generate(tmp_path_factory.mktemp("peer_data"), n_train=4, n_test=0, seed=0, image_size=IMAGE_SIZE).train


def swift_peer(model, dataset, out, extra=(), edits="off"):
    from swift_plugins.editgrpo.tiny.swift_run import grpo_args, run, swift_command

    # the recipes' shared `--teacher_kl_coef 0` first, then the peer's flags (run/rl_common.sh)
    args = grpo_args(dataset, 2, 2, 16, 2) + ["--teacher_kl_coef", "0", *extra]
    result = run(*swift_command("rlhf", model, out, args, env={"EDITGRPO_EDITS": edits}))
    return result, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("method", PEER_METHODS)
def test_peer_trains_with_its_own_swift_metrics(method, tiny_model_dir, teacher_data, tmp_path):
    from swift_plugins.editgrpo.tiny.swift_run import logged_steps

    peer = resolve_method(method, str(teacher_data))
    result, output = swift_peer(tiny_model_dir, teacher_data, tmp_path / "out", peer.flags, "on" if peer.edits else "off")
    assert result.returncode == 0, output[-6000:]
    steps = logged_steps(tmp_path / "out")
    assert len(steps) == 2
    (mechanism,) = peer.peers
    for metrics in steps:
        assert OWN_METRICS[mechanism] <= set(metrics), sorted(metrics)
        assert not (ALL_PEER_METRICS - OWN_METRICS[mechanism]) & set(metrics)  # no other peer ran
        assert ("editgrpo/edited_fraction" in metrics) == peer.edits
    if mechanism == "rlsd":
        assert [m["rlsd_lambda"] for m in steps] == [0.5, 0.5]
    elif mechanism == "sdar":
        assert all(m["sdar/coef"] == 0.1 and 0 <= m["sdar/gate_mean"] <= 1 for m in steps)
    elif mechanism == "opd":
        assert "OPD-RL is on" in output
    else:  # μ = 0.9 at step 0 of swift's cosine schedule; the unread teacher_prompt was dropped (no teacher_kl)
        assert steps[0]["editgrpo/chord_mu"] == pytest.approx(0.9) and steps[1]["editgrpo/chord_mu"] < 0.9
        assert "`teacher_prompt` dropped" in output


@pytest.mark.slow
def test_rlsd_on_rows_without_teacher_prompt_stops_before_training(tiny_model_dir, tmp_path):
    """swift alone would train plain GRPO here (RLSD needs the teacher's log-probs and skips silently)."""
    from swift_plugins.editgrpo.tiny.swift_run import write_iu_dataset

    dataset = write_iu_dataset(tmp_path / "data", 2)
    result, output = swift_peer(tiny_model_dir, dataset, tmp_path / "out", PEER_FLAGS["rlsd"])
    assert result.returncode != 0 and "Train:" not in output
    errors = [line for line in output.splitlines() if line.startswith("swift_plugins.editgrpo.peers.PeerError")]
    assert len(errors) == 1 and "`teacher_prompt` column" in errors[0] and "editgrpo convert" in errors[0]


@pytest.mark.slow
def test_swift_refuses_rlsd_with_sdar_while_parsing_its_arguments(tiny_model_dir, teacher_data, tmp_path):
    result, output = swift_peer(tiny_model_dir, teacher_data, tmp_path / "out", PEER_FLAGS["rlsd"] + PEER_FLAGS["sdar"])
    assert result.returncode != 0 and "Train:" not in output
    assert "in _check_sdar" in output and "cannot be combined with advantage_reweight=rlsd" in output
    assert "EditGRPO configuration" not in output  # stopped in swift's argument checks, before the trainer
