"""`editgrpo edit`: human and --json output, every rule option, rate backend, errors."""
import json
import re
import subprocess
import sys

import pytest

from swift_plugins.editgrpo.cli import main
from rewards.testing import build_rate_models


@pytest.fixture(scope="module")
def pair(iu_reports):
    by_uid = {r["uid"]: r["findings"] for r in iu_reports}
    return by_uid["100"], by_uid["56"]


def run_json(capsys, *argv):
    assert main(["edit", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_output(capsys, pair):
    gen, ref = pair
    out = run_json(capsys, "--gen", gen, "--ref", ref)
    assert out["edited"] == "The lungs are clear. Heart and mediastinum normal." and out["changed"] is True
    assert out["ops"] == [{"op": "fp_replace", "old_sentence": "Both lungs are clear and expanded.",
                           "new_sentence": "The lungs are clear.", "trigger": "lungs", "score": pytest.approx(1.0)}]
    assert out["backend"] == "lexicon" and out["options"]["match"] == "affinity"


def test_run_settings_are_the_defaults(capsys, pair, monkeypatch):
    """Without flags `editgrpo edit` applies the run's EDITGRPO_* settings, as the trainer does; flags win."""
    gen, ref = pair
    monkeypatch.setenv("EDITGRPO_MATCH", "paper")
    monkeypatch.setenv("EDITGRPO_TAU", "0.7")
    out = run_json(capsys, "--gen", gen, "--ref", ref)
    assert (out["options"]["match"], out["options"]["tau"]) == ("paper", 0.7)
    assert run_json(capsys, "--gen", gen, "--ref", ref, "--match", "affinity")["options"]["match"] == "affinity"
    monkeypatch.setenv("EDITGRPO_TAU", "2")
    with pytest.raises(SystemExit, match="EDITGRPO_TAU=2.0: must be in"):
        main(["edit", "--gen", gen, "--ref", ref])


def test_demo_profile_choices_are_the_profiles():
    from swift_plugins.editgrpo.commands import arena as arena_command, demo as demo_command
    from swift_plugins.editgrpo.tiny import arena, demo

    assert demo_command.PROFILE_NAMES == tuple(demo.PROFILES)
    assert arena_command.PROFILE_NAMES == tuple(arena.PROFILES)


def test_rule_options_reach_the_engine(capsys, iu_reports):
    by_uid = {r["uid"]: r["findings"] for r in iu_reports}
    out = run_json(capsys, "--gen", by_uid["26"], "--ref", by_uid["56"], "--match", "paper", "--tau", "0.6",
                   "--ops", "1", "--seed", "0", "--fp-scope", "sentence")
    assert [op["op"] for op in out["ops"]] == ["fp_delete"]
    assert out["options"] == {"match": "paper", "tau": 0.6, "ops_per_rollout": 1, "fp_scope": "sentence",
                              "contradictions": True, "seed": 0}
    three = run_json(capsys, "--gen", by_uid["100"], "--ref", by_uid["56"], "--ops", "3")
    assert len(three["ops"]) == 3
    off = run_json(capsys, "--gen", by_uid["798"], "--ref", by_uid["1593"], "--match", "paper",
                   "--contradictions", "off")
    assert all(op["op"] != "contradiction" for op in off["ops"])


def test_human_output(capsys, pair):
    gen, ref = pair
    assert main(["edit", "--gen", gen, "--ref", ref]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "The lungs are clear. Heart and mediastinum normal."
    assert lines[1].startswith("# fp_replace trigger='lungs'")
    assert lines[2:] == ["#   - Both lungs are clear and expanded.", "#   + The lungs are clear."]
    assert main(["edit", "--gen", ref, "--ref", ref]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "# unchanged"


def test_bad_inputs(capsys, pair):
    out = run_json(capsys, "--gen", "", "--ref", pair[1])
    assert out["changed"] and out["edited"]
    out = run_json(capsys, "--gen", "Cœur normal", "--ref", "")
    assert out == {**out, "edited": "Cœur normal", "changed": False, "ops": []}
    with pytest.raises(SystemExit, match="tau must be in"):
        main(["edit", "--gen", "a", "--ref", "b", "--tau", "2"])


def test_rate_backend(capsys, tmp_path, pair, iu_findings, monkeypatch):
    ner_dir, embedder_dir = build_rate_models(tmp_path, iu_findings[:100])
    out = run_json(capsys, "--gen", pair[0], "--ref", pair[1], "--backend", "rate", "--ner-dir", str(ner_dir),
                   "--embedder-dir", str(embedder_dir), "--device", "cpu")
    assert out["backend"] == "rate" and isinstance(out["changed"], bool)
    monkeypatch.setenv("EDITGRPO_MODELS_DIR", str(tmp_path))  # default layout from rewards.paths
    assert run_json(capsys, "--gen", pair[0], "--ref", pair[1], "--backend", "rate", "--device", "cpu") == out
    assert main(["edit", "--gen", "a", "--ref", "b", "--backend", "rate", "--ner-dir", str(tmp_path / "missing"),
                 "--embedder-dir", str(embedder_dir)]) == 1
    assert re.search(r"^editgrpo edit: error: RaTE-NER model dir .* does not exist", capsys.readouterr().err)


def test_console_entry_point(pair):
    done = subprocess.run([sys.executable, "-m", "swift_plugins.editgrpo.cli", "edit", "--gen", pair[0], "--ref",
                           pair[1], "--json"], capture_output=True, text=True, check=True)
    assert set(json.loads(done.stdout)) >= {"edited", "changed", "ops"}
