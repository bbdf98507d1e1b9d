"""The embedded demo: resumable stages that never mix runs, and the quick profile end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swift_plugins.editgrpo.tiny import demo, stages
from swift_plugins.editgrpo.tiny.demo import DemoConfig, DemoError, run_stages
from swift_plugins.editgrpo.tiny.stages import Stage, progress_line

REPO_ROOT = Path(__file__).resolve().parents[1]


def _stages(calls: list[str], fail_at: str | None = None) -> tuple[Stage, ...]:
    """Three stages writing one file each; `fail_at` is interrupted after a partial write."""

    def make(name: str, settings: tuple[str, ...]) -> Stage:
        def run(ctx) -> None:
            calls.append(name)
            folder = ctx.out / name
            folder.mkdir()
            (folder / "partial").write_text("half")
            if name == fail_at:
                raise KeyboardInterrupt
            (folder / "done").write_text(f"{name} of {ctx.config.fingerprint()}")

        return Stage(name, (name,), run, settings)

    return tuple(make(name, settings) for name, settings in (("data", ("n_train",)), ("train", ("rl_steps",)),
                                                             ("eval", ())))


def test_rerun_reuses_finished_stages(tmp_path):
    calls: list[str] = []
    first = run_stages(tmp_path, DemoConfig(), _stages(calls))
    second = run_stages(tmp_path, DemoConfig(), _stages(calls))
    assert calls == ["data", "train", "eval"]
    assert second == first  # recorded timings come back from the markers


def test_interrupted_stage_is_wiped_and_redone(tmp_path):
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_stages(tmp_path, DemoConfig(), _stages(calls, fail_at="train"))
    assert (tmp_path / "train" / "partial").exists() and not (tmp_path / "train" / "done").exists()
    run_stages(tmp_path, DemoConfig(), _stages(calls))
    assert calls == ["data", "train", "train", "eval"]
    assert (tmp_path / "train" / "done").exists()


def test_changed_setting_redoes_the_stages_it_affects(tmp_path):
    calls: list[str] = []
    run_stages(tmp_path, DemoConfig(), _stages(calls))
    changed = DemoConfig(rl_steps=3)
    run_stages(tmp_path, changed, _stages(calls))
    assert calls == ["data", "train", "eval", "train", "eval"]  # data does not depend on rl_steps
    assert (tmp_path / "eval" / "done").read_text() == f"eval of {changed.fingerprint()}"
    run_stages(tmp_path, DemoConfig(rl_steps=3, n_train=7), _stages(calls))
    assert calls[5:] == ["data", "train", "eval"]  # a changed first stage invalidates everything after it
    assert json.loads((tmp_path / demo.RUN_FILE).read_text())["config"]["n_train"] == 7


def test_restart_flag_redoes_everything(tmp_path):
    calls: list[str] = []
    run_stages(tmp_path, DemoConfig(), _stages(calls))
    (tmp_path / "stale.txt").write_text("from the first run")
    run_stages(tmp_path, DemoConfig(), _stages(calls), restart=True)
    assert calls == ["data", "train", "eval"] * 2
    assert not (tmp_path / "stale.txt").exists()


def test_foreign_directory_is_never_touched(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(DemoError, match="not a demo output directory"):
        run_stages(tmp_path, DemoConfig(), _stages([]))
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_one_run_per_directory_at_a_time(tmp_path):
    with stages.locked(tmp_path, demo.KIND):
        with pytest.raises(DemoError, match="in use by another demo run"):
            run_stages(tmp_path, DemoConfig(), _stages([]))


def test_every_setting_belongs_to_a_stage():
    used = {name for stage in demo.STAGES for name in stage.settings}
    assert used == set(DemoConfig.__dataclass_fields__)


def test_progress_line_takes_the_latest_bar_and_reward():
    tail = ("Map: 100%|##| 4/4\n{'loss': '0.1', 'reward': '0.8125', 'step_time': '3'}\n"
            "Train:  40%|####      | 4/10 [00:30<00:45, 7.5s/it]\rTrain:  50%|#####     | 5/10 [00:37<00:37, 7.5s/it]\r")
    assert progress_line(tail) == "Train:  50%|#####     | 5/10 [00:37<00:37, 7.5s/it]  reward=0.812"


def test_stage_environment_is_isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("EDITGRPO_EDITS", "off")
    monkeypatch.setenv("NPROC_PER_NODE", "8")
    env = demo.clean_env(DemoConfig(seed=3), tmp_path)
    assert "NPROC_PER_NODE" not in env and "EDITGRPO_EDITS" not in env
    assert (env["EDITGRPO_REWARD_BACKEND"], env["EDITGRPO_ANALYZER"], env["EDITGRPO_SEED"]) == ("rules", "lexicon", "3")


def test_failed_command_reports_its_log(tmp_path):
    with pytest.raises(DemoError, match="boom failed .exit 3.*full log") as error:
        stages.run_logged([sys.executable, "-c", "print('went wrong'); raise SystemExit(3)"], {}, tmp_path / "boom.log",
                        "boom", heartbeat=1)
    assert "went wrong" in str(error.value)


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    """`run/demo.sh --profile quick`: every stage for real (swift sft, rlhf x2, infer x3, eval)."""
    out = tmp_path / "demo_out"
    command = ["bash", str(REPO_ROOT / "run" / "demo.sh"), "--profile", "quick", "--out", str(out), "--heartbeat", "5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for method in ("sft", "drgrpo", "editgrpo"):
        assert {"chexbert_micro_f1_14", "radgraph_partial_f1", "ratescore"} <= set(summary[method]), summary[method]
    assert summary["wall_seconds"] > 0 and set(summary["stage_seconds"]) == {s.name for s in demo.STAGES}
    assert "| sft |" in result.stdout and "| editgrpo |" in result.stdout
    telemetry = json.loads((out / "edit_telemetry.json").read_text())
    assert telemetry["steps"] == demo.PROFILES["quick"].rl_steps and telemetry["edited_fraction"] > 0
    assert len(telemetry["reward_curves"]["drgrpo"]) == demo.PROFILES["quick"].rl_steps
    assert (out / "eval" / "metrics.png").stat().st_size > 0 and (out / "reward_curves.png").stat().st_size > 0
    # both RL runs started from the same SFT checkpoint, and only the edits differ
    configs = {m: json.loads((out / m / "editgrpo_config.json").read_text()) for m in ("drgrpo", "editgrpo")}
    assert (configs["drgrpo"]["edits"], configs["editgrpo"]["edits"]) == (False, True)
    for m in ("drgrpo", "editgrpo"):
        args = json.loads((out / m / "args.json").read_text())
        assert Path(args["model"]).parent == out / "sft"

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done earlier") == len(demo.STAGES)
    assert json.loads((out / "summary.json").read_text()) == summary


def test_invalid_settings_raise_one_message_naming_each():
    """num_generations=0 or rl_lr=nan used to start the demo and fail minutes later inside swift."""
    with pytest.raises(demo.DemoConfigError) as error:
        DemoConfig(num_generations=1, rl_lr=float("nan"), rl_steps=0, temperature=float("inf"), beta=-0.1, seed=-1)
    assert str(error.value) == (
        "invalid demo settings: seed=-1: must be >= 0; rl_steps=0: must be >= 1; num_generations=1: must be >= 2; "
        "rl_lr=nan: must be a finite number > 0; temperature=inf: must be a finite number > 0; "
        "beta=-0.1: must be a finite number >= 0")
    with pytest.raises(demo.DemoConfigError, match="n_train=0: must be >= 1"):
        demo.profile("quick", n_train=0)
    with pytest.raises(demo.DemoConfigError, match="edit_match='exact': expected one of affinity|paper"):
        DemoConfig(edit_match="exact")
    with pytest.raises(demo.DemoConfigError, match="family='llava': expected one of qwen2_5_vl|qwen3_vl|qwen3_5"):
        demo.profile("quick", family="llava")
    assert all(not config.problems() for config in demo.PROFILES.values())


def test_the_family_sets_template_and_pixels_and_keeps_default_fingerprints(tmp_path):
    """--family reaches every recipe; the default family leaves the stage fingerprints as before the option."""
    from templates.families import FAMILIES

    qwen3 = demo.profile("quick", family="qwen3_vl")
    env = demo.clean_env(qwen3, tmp_path)
    assert env["MODEL_FAMILY"] == "qwen3_vl" and env["MAX_PIXELS"] == str(FAMILIES["qwen3_vl"].same_budget(demo.MAX_PIXELS))
    ctx = demo.Context(qwen3, tmp_path, env, 15.0)
    assert demo._cpu_train_env(ctx)["TEMPLATE"] == "qwen3_vl_cxr"
    stage = next(s for s in demo.STAGES if s.name == "tiny_model")
    default = demo.PROFILES["quick"]
    assert stage.fingerprint(default, 1, "x") == stages_digest(1, "x")
    assert stage.fingerprint(qwen3, 1, "x") != stage.fingerprint(default, 1, "x")


def stages_digest(version: int, previous: str) -> str:
    from swift_plugins.editgrpo.tiny.stages import digest

    return digest({"version": version, "stage": "tiny_model", "after": previous})
