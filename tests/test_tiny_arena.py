"""The arena: method registry, seeds, bad input, and `--profile quick` end to end (statistics checked by hand)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from swift_plugins.editgrpo import REPO_ROOT
from swift_plugins.editgrpo.tiny import arena
from swift_plugins.editgrpo.tiny.arena import METHODS, ArenaConfig, ArenaError, aggregate, parse_seeds, plan

T_975_DOF1 = 12.706204736174707  # Student t, 97.5 % quantile, 1 degree of freedom


def test_registry_holds_the_methods_and_ablations():
    assert {"sft", "drgrpo", "editgrpo", "editgrpo-paper", "editgrpo-frac0.25", "editgrpo-inplace",
            "editgrpo-fp-sentence"} <= set(METHODS)
    assert METHODS["sft"].script is None and METHODS["drgrpo"].script == "grpo_baseline.sh"
    assert METHODS["editgrpo-paper"].env == {"EDITGRPO_MATCH": "paper"}
    for method in METHODS.values():  # every preset's settings are valid EditGRPO settings
        from swift_plugins.editgrpo.config import EditGRPOConfig

        EditGRPOConfig.from_env(dict(method.env))


def test_seeds_and_methods_are_checked():
    assert parse_seeds("1-3,7") == (1, 2, 3, 7) and parse_seeds("4") == (4,)
    for bad in ("", "a", "1-b", ","):
        with pytest.raises(ArenaError, match="seeds"):
            parse_seeds(bad)
    with pytest.raises(ArenaError, match="unknown methods \\['grpo'\\]; the registry has sft, drgrpo"):
        ArenaConfig(methods=("sft", "grpo"))
    with pytest.raises(ArenaError, match="distinct"):
        ArenaConfig(seeds=(1, 1))
    assert [r.name for r in plan(ArenaConfig(methods=("sft", "drgrpo"), seeds=(1, 2)))] == ["drgrpo/seed1", "drgrpo/seed2"]


def test_cli_bad_input(tmp_path, capsys):
    from swift_plugins.editgrpo.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["arena", "--methods", "sft,nope", "--out", str(tmp_path / "a")])
    assert exit_info.value.code == 2 and "unknown methods ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["arena", "--jobs", "0", "--out", str(tmp_path / "a")])
    assert exit_info.value.code == 2 and "--jobs must be >= 1" in capsys.readouterr().err
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter.tex").write_text("precious")
    assert main(["arena", "--profile", "quick", "--out", str(foreign)]) == 1
    assert "is not an arena output directory" in capsys.readouterr().err
    assert (foreign / "chapter.tex").read_text() == "precious" and len(list(foreign.iterdir())) == 2  # + .lock


def test_aggregate_pairs_by_seed_and_marks_failures():
    runs = [{"method": "drgrpo", "seed": s, "status": "ok", "metrics": {"avg": v}} for s, v in ((1, 0.30), (2, 0.20), (3, 0.25))]
    runs += [{"method": "editgrpo", "seed": s, "status": "ok", "metrics": {"avg": v}} for s, v in ((1, 0.35), (2, 0.30))]
    runs += [{"method": "editgrpo", "seed": 3, "status": "failed", "error": "boom"}]
    summary = aggregate(runs, ["drgrpo", "editgrpo"])
    assert summary["editgrpo"]["failed"] == [3] and summary["editgrpo"]["seeds"] == [1, 2]
    diff = summary["editgrpo"]["avg"]["vs_baseline"]  # seeds 1 and 2 only: differences 0.05 and 0.10
    assert diff["n"] == 2 and diff["mean"] == pytest.approx(0.075)
    sd = math.sqrt(((0.05 - 0.075) ** 2 + (0.10 - 0.075) ** 2) / 1)
    assert diff["ci_high"] - diff["mean"] == pytest.approx(T_975_DOF1 * sd / math.sqrt(2))
    t = 0.075 / (sd / math.sqrt(2))
    assert diff["p_value"] == pytest.approx(1 - 2 * math.atan(t) / math.pi)  # t with 1 dof is Cauchy
    assert "vs_baseline" not in summary["drgrpo"]["avg"]


@pytest.mark.slow
def test_quick_arena_end_to_end(tmp_path):
    """`editgrpo arena --profile quick`: real swift sft / rlhf / infer, then the statistics against the per-run JSON."""
    out = tmp_path / "arena_out"
    command = [sys.executable, "-m", "swift_plugins.editgrpo.cli", "arena", "--profile", "quick", "--out", str(out),
               "--heartbeat", "5", "--jobs", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=2400, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "arena.json").read_text())
    config = arena.PROFILES["quick"]
    ok = [r for r in report["runs"] if r["status"] == "ok"]
    assert {(r["method"], r["seed"]) for r in ok} >= {(m, s) for m in config.methods for s in config.seeds}
    for method in (*config.methods, *arena.BLIND):
        values = {r["seed"]: r["metrics"]["avg"] for r in ok if r["method"] == method}
        entry = report["methods"][method]["avg"]
        mean = sum(values.values()) / len(values)
        assert entry["summary"]["mean"] == pytest.approx(mean)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values.values()) / (len(values) - 1))
        assert entry["summary"]["sd"] == pytest.approx(sd, abs=1e-12)
        assert entry["summary"]["ci_high"] - mean == pytest.approx(T_975_DOF1 * sd / math.sqrt(2), abs=1e-12)
        if method != "drgrpo":
            base = {r["seed"]: r["metrics"]["avg"] for r in ok if r["method"] == "drgrpo"}
            diffs = [values[s] - base[s] for s in sorted(base)]
            assert entry["vs_baseline"]["mean"] == pytest.approx(sum(diffs) / len(diffs))
    for name in ("arena.md", "arena.csv", "arena.png", "reward_curves.png"):
        assert (out / name).stat().st_size > 0
    assert "| editgrpo |" in (out / "arena.md").read_text() and "blind-constant" in done.stdout
    assert all(len(c) == config.task.rl_steps for c in report["reward_curves"]["drgrpo"])
    # resumed: nothing is redone; a new seed runs only the new runs
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert again.returncode == 0 and again.stdout.count("done earlier") == 4 + len(arena.plan(config))
