"""The arena: several RL methods x several seeds from one SFT checkpoint of the embedded task, compared
with confidence intervals.

Stages (resumable like the demo, `stages`): synthetic data, tiny model, SFT, greedy SFT inference;
then one run per (method, seed): `swift rlhf` through the method's recipe, greedy inference on the
held-out studies, offline (`rules`) scoring. Seed s gives every method the same prompt order and
sampling seed (`--seed s --data_seed s`, `EDITGRPO_SEED=s`), so methods are compared seed by seed.
Each run keeps its own marker (a fingerprint of the SFT stage, the method and the RL settings):
an interrupted arena redoes only the unfinished run, adding a method or seed runs only the new
ones, and a failed run is reported, marked in the table and does not stop the others.

Beside the methods, two image-blind baselines are scored on the same studies: one constant report
(the SFT policy's most common) for every study, and the SFT reports shuffled across studies (one
permutation per seed); a difference between methods is read against what ignoring the images gets.
"""
from __future__ import annotations

import json
import math
import random
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from datasets_registry.jsonl import read_jsonl, write_jsonl, write_text_atomic
from swift_plugins.editgrpo.evaluation.stats import paired_difference, summarize
from swift_plugins.editgrpo.peers import PEER_METHODS
from swift_plugins.editgrpo.tiny import demo
from swift_plugins.editgrpo.tiny import stages as stages_lib
from swift_plugins.editgrpo.tiny.stages import Stage, StageError, digest, remove

KIND = "arena"
VERSION = 1  # bump when a run's commands change: older runs are then redone
BASELINE = "drgrpo"  # the paired differences are against this method
METRICS: tuple[str, ...] = ("avg", "chexbert_micro_f1_14", "chexbert_macro_f1_14", "chexbert_micro_f1_5",
                            "chexbert_macro_f1_5", "radgraph_partial_f1", "ratescore", "bleu4", "rouge_l",
                            "words", "clinical_sentence_share")
BLIND = ("blind-constant", "blind-shuffled")  # the image-blind baselines


class ArenaError(StageError):
    """An arena setting is unusable (unknown method, bad seeds) or its directory is not an arena's."""


@dataclass(frozen=True)
class Method:
    """A named preset: the RL recipe (None: no RL, the SFT checkpoint itself) and its EDITGRPO_* settings."""

    name: str
    description: str
    script: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        return {"script": self.script, "env": dict(sorted(self.env.items()))}


def _methods(*methods: Method) -> dict[str, Method]:
    return {m.name: m for m in methods}


METHODS: dict[str, Method] = _methods(
    Method("sft", "the SFT checkpoint, no RL"),
    Method("drgrpo", "Dr.GRPO: the same trainer with edits off", "grpo_baseline.sh"),
    Method("editgrpo", "EditGRPO, the reference code's defaults (affinity matching)", "editgrpo.sh"),
    Method("editgrpo-paper", "EditGRPO with the paper's matching (EDITGRPO_MATCH=paper)", "editgrpo.sh",
           {"EDITGRPO_MATCH": "paper"}),
    Method("editgrpo-frac0.25", "EditGRPO editing a quarter of each group (EDITGRPO_EDIT_FRACTION=0.25)", "editgrpo.sh",
           {"EDITGRPO_EDIT_FRACTION": "0.25"}),
    Method("editgrpo-inplace", "EditGRPO editing rollouts in place (EDITGRPO_PLACEMENT=in_place)", "editgrpo.sh",
           {"EDITGRPO_PLACEMENT": "in_place"}),
    Method("editgrpo-fp-sentence", "EditGRPO scoring FP replacements on the whole sentence (EDITGRPO_FP_SCOPE=sentence)",
           "editgrpo.sh", {"EDITGRPO_FP_SCOPE": "sentence"}),
    Method("editgrpo-luffy", "EditGRPO with LUFFY's shaped ratio on edited rows (EDITGRPO_EDIT_RATIO=luffy)",
           "editgrpo.sh", {"EDITGRPO_EDIT_RATIO": "luffy"}),
    # ms-swift's gold-guided peers and their combinations with the edits (run/peers.sh METHOD=...)
    *(Method(name, f"ms-swift's gold-guided peer(s) through run/peers.sh (METHOD={name})", "peers.sh", {"METHOD": name})
      for name in PEER_METHODS),
)


@dataclass(frozen=True)
class ArenaConfig:
    """The task, SFT and RL settings (`demo.DemoConfig`), the methods and the seeds."""

    task: demo.DemoConfig = field(default_factory=demo.DemoConfig)
    methods: tuple[str, ...] = ("sft", "drgrpo", "editgrpo", "editgrpo-paper")
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ArenaError(f"unknown methods {unknown}; the registry has {', '.join(METHODS)}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ArenaError(f"methods must be distinct and at least one, got {list(self.methods)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ArenaError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")


PROFILES: dict[str, ArenaConfig] = {
    "full": ArenaConfig(),
    # every stage and the statistics, in minutes (the end-to-end test)
    "quick": ArenaConfig(demo.PROFILES["quick"], ("sft", "drgrpo", "editgrpo"), (1, 2)),
}


def parse_seeds(text: str) -> tuple[int, ...]:
    """"1,2,3" or "1-5" (or a mix, "1-3,7")."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, _, high = part.partition("-")
            seeds.extend(range(int(low), int(high) + 1) if high else [int(low)])
    except ValueError:
        raise ArenaError(f"seeds {text!r}: expected integers like 1,2,3 or 1-5") from None
    if not seeds:
        raise ArenaError(f"seeds {text!r}: no seed")
    return tuple(seeds)


@dataclass(frozen=True)
class Run:
    method: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method}/seed{self.seed}"


def plan(config: ArenaConfig) -> list[Run]:
    """Every (method, seed) run; `sft` needs no run (its result is the SFT inference, for every seed)."""
    return [Run(m, s) for m in config.methods if METHODS[m].script for s in config.seeds]


# ----------------------------------------------------------------------------- the shared stages

def _shared_stages() -> tuple[Stage, ...]:
    by_name = {stage.name: stage for stage in demo.STAGES}
    infer_sft = Stage("infer_sft", ("infer/sft.jsonl", "infer/sft.settings.json"), demo._infer_stage("sft"),
                      ("infer_max_new_tokens",))
    return (by_name["data"], by_name["tiny_model"], by_name["sft"], infer_sft)


def _run_fingerprint(config: ArenaConfig, run: Run, sft_fingerprint: str) -> str:
    task = config.task
    settings = {name: getattr(task, name) for name in demo.RL_SETTINGS if name != "seed"}
    return digest({"version": VERSION, "after": sft_fingerprint, "method": METHODS[run.method].fingerprint(),
                   "seed": run.seed, "infer_max_new_tokens": task.infer_max_new_tokens, **settings})


def _run_dir(out: Path, run: Run) -> Path:
    return out / "runs" / run.method / f"seed{run.seed}"


def _execute(ctx: demo.Context, run: Run, fingerprint: str) -> dict[str, Any]:
    """One run (RL + inference), or the record of an earlier identical one; never raises for a failed run."""
    run_dir = _run_dir(ctx.out, run)
    marker = run_dir / "run.json"
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded.get("fingerprint") == fingerprint and recorded.get("status") == "ok":
            print(f"    {run.name}: done earlier", flush=True)
            return recorded
    remove(run_dir)
    run_dir.mkdir(parents=True)
    method = METHODS[run.method]
    label = f"{run.method}-seed{run.seed}"
    record: dict[str, Any] = {"method": run.method, "seed": run.seed, "fingerprint": fingerprint}
    try:
        demo.rl_run(ctx, method.script, run_dir / "train", run.seed, label, dict(method.env))
        demo.infer_run(ctx, demo.latest_checkpoint(run_dir / "train"), run_dir / "infer.jsonl", f"infer-{label}")
        for checkpoint in (run_dir / "train").glob("checkpoint-*"):  # the result is kept; weights are not needed
            shutil.rmtree(checkpoint)
        record["status"] = "ok"
    except StageError as error:
        record.update(status="failed", error=str(error).splitlines()[0])
        print(f"    {run.name}: FAILED ({record['error']}); the arena goes on", flush=True)
    marker.write_text(json.dumps(record, indent=2) + "\n")
    return record


def run_arena(out: Path, config: ArenaConfig, jobs: int = 1, restart: bool = False, heartbeat: float = 15.0) -> dict:
    """Run (or resume) the arena in `out`; writes and returns arena.json's content."""
    out = out.resolve()
    if jobs < 1:
        raise ArenaError(f"--jobs must be >= 1, got {jobs}")
    context = demo.Context(config.task, out, demo.clean_env(config.task, out), heartbeat)
    shared = _shared_stages()
    # the shared stages depend on the task only: adding methods or seeds keeps them
    stages_lib.run_stages(out, KIND, config.task, VERSION, shared, context, restart, "EditGRPO arena")
    sft_fingerprint = _stage_chain(config, shared)
    runs = plan(config)
    print(f"==> {len(runs)} runs ({len(config.methods)} methods x {len(config.seeds)} seeds), {jobs} at a time", flush=True)
    with stages_lib.locked(out, KIND), ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(lambda r: _execute(_job_context(context, jobs), r, _run_fingerprint(config, r, sft_fingerprint)),
                                runs))
    report = build_report(out, config, records)
    print("\n" + markdown(report) + "\n")
    print(f"arena: {out / 'arena.md'}  {out / 'arena.json'}  {out / 'arena.csv'}  {out / 'arena.png'}  "
          f"{out / 'reward_curves.png'}")
    return report


def _stage_chain(config: ArenaConfig, shared: Sequence[Stage]) -> str:
    fingerprint = ""
    for stage in shared:
        fingerprint = stage.fingerprint(config.task, VERSION, fingerprint)
    return fingerprint


def _job_context(context: demo.Context, jobs: int) -> demo.Context:
    """Parallel runs share the cores: each gets its share of torch threads."""
    import os

    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    return replace(context, env={**context.env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})


# ----------------------------------------------------------------------------- scoring and the report

def _blind_baselines(out: Path, seeds: Sequence[int]) -> dict[tuple[str, int], Path]:
    """Plain {id, hyp, ref} files: the SFT policy's most common report for every study, and the SFT
    reports shuffled across studies (permutation seeded by the arena seed)."""
    rows = read_jsonl(out / "infer" / "sft.jsonl")
    ids = [str(r.get("study_id") or i) for i, r in enumerate(rows)]
    hyps = [r["response"] or "" for r in rows]
    refs = [r.get("solution") or r.get("labels") or "" for r in rows]
    constant = Counter(hyps).most_common(1)[0][0]
    files: dict[tuple[str, int], Path] = {}
    for seed in seeds:
        order = list(range(len(hyps)))
        random.Random(seed).shuffle(order)
        for name, texts in (("blind-constant", [constant] * len(hyps)), ("blind-shuffled", [hyps[j] for j in order])):
            path = out / "blind" / f"{name}-seed{seed}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_jsonl(path, [{"id": i, "hyp": h, "ref": r} for i, h, r in zip(ids, texts, refs)])
            files[(name, seed)] = path
    return files


def score_results(results: Mapping[tuple[str, int], Path]) -> dict[tuple[str, int], dict[str, float]]:
    """Offline scores of every result file (one set of scorers, shared caches) plus the drift checks."""
    from rewards.config import RewardConfig
    from rewards.entities.backends import build_analyzer
    from swift_plugins.editgrpo.evaluation.columns import METRIC_GROUPS
    from swift_plugins.editgrpo.evaluation.results import read_run
    from swift_plugins.editgrpo.evaluation.runners import build_runners
    from swift_plugins.editgrpo.evaluation.table import EvalSettings, evaluate_runs

    metrics = tuple(m for m in METRIC_GROUPS if m != "green")
    runs = [read_run(path, f"{method}@{seed}") for (method, seed), path in results.items()]
    runners, notes, _ = build_runners(metrics, RewardConfig(backend="rules"),
                                      n_references=len({p.ref for run in runs for p in run.pairs}))
    result = evaluate_runs(runs, EvalSettings(tuple(runners), "rules", "none"), runners, notes, progress=False)
    lexicon = build_analyzer("lexicon")
    scores: dict[tuple[str, int], dict[str, float]] = {}
    for key, run in zip(results, result.runs):
        row = {k: v for k, v in result.table[run.name].items() if v is not None}
        analyses = lexicon.analyze([p.hyp for p in run.pairs])
        sentences = [s for a in analyses for s in a.sentences]
        with_entity = {(i, e.sentence) for i, a in enumerate(analyses) for e in a.entities if e.sentence >= 0}
        row["words"] = sum(len(p.hyp.split()) for p in run.pairs) / max(1, len(run.pairs))
        row["clinical_sentence_share"] = len(with_entity) / len(sentences) if sentences else 0.0
        scores[key] = row
    return scores


def _reward_curve(run_dir: Path) -> list[float]:
    """On-policy reward per step: an EditGRPO step's edited rows are not the policy's own samples."""
    return [float(r.get("editgrpo/reward_on_policy", r["reward"])) for r in demo.read_logging(run_dir / "train")
            if "reward" in r]


def build_report(out: Path, config: ArenaConfig, records: Sequence[dict[str, Any]]) -> dict:
    """Score every finished run, aggregate per method over seeds, pair with the baseline; write the files."""
    ok = {(r["method"], r["seed"]) for r in records if r["status"] == "ok"}
    results: dict[tuple[str, int], Path] = {}
    for method in config.methods:
        for seed in config.seeds:
            if not METHODS[method].script:
                results[(method, seed)] = out / "infer" / "sft.jsonl"
            elif (method, seed) in ok:
                results[(method, seed)] = _run_dir(out, Run(method, seed)) / "infer.jsonl"
    results.update(_blind_baselines(out, config.seeds))
    scores = score_results(results)
    per_run = [{"method": m, "seed": s, "status": "ok", "metrics": scores[(m, s)]} for (m, s) in results]
    per_run += [{"method": r["method"], "seed": r["seed"], "status": "failed", "error": r.get("error", "")}
                for r in records if r["status"] != "ok"]
    report = {
        "config": {"task": asdict(config.task), "methods": list(config.methods), "seeds": list(config.seeds),
                   "baseline": BASELINE, "backend": "rules (offline proxies)", "confidence": 0.95},
        "runs": per_run,
        "methods": aggregate(per_run, [*config.methods, *BLIND]),
        "reward_curves": {m: [_reward_curve(_run_dir(out, Run(m, s))) for s in config.seeds if (m, s) in ok]
                          for m in config.methods if METHODS[m].script},
    }
    write_outputs(out, report)
    return report


def aggregate(per_run: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> dict[str, dict]:
    """Per method and metric: the seed summary, and the paired difference to the baseline on shared seeds."""
    values: dict[str, dict[int, dict[str, float]]] = {}
    for run in per_run:
        if run["status"] == "ok":
            values.setdefault(run["method"], {})[run["seed"]] = run["metrics"]
    baseline = values.get(BASELINE, {})
    summary: dict[str, dict] = {}
    for method in methods:
        seeds = values.get(method, {})
        entry: dict[str, Any] = {"seeds": sorted(seeds), "failed": sorted(r["seed"] for r in per_run
                                                                        if r["method"] == method and r["status"] != "ok")}
        for metric in METRICS:
            own = [seeds[s][metric] for s in sorted(seeds) if metric in seeds[s]]
            if not own:
                continue
            shared = [s for s in sorted(seeds) if s in baseline and metric in seeds[s] and metric in baseline[s]]
            stats: dict[str, Any] = {"summary": asdict(summarize(own))}
            if method != BASELINE and shared:
                stats["vs_baseline"] = asdict(paired_difference([seeds[s][metric] for s in shared],
                                                                [baseline[s][metric] for s in shared]))
            entry[metric] = stats
        summary[method] = entry
    return summary


def _cell(stats: Mapping[str, Any] | None) -> str:
    if not stats:
        return "–"
    half = stats.get("ci_high")
    if half is None:
        return f"{stats['mean']:.4f}"
    return f"{stats['mean']:.4f} ± {(stats['ci_high'] - stats['ci_low']) / 2:.4f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(report: Mapping[str, Any]) -> str:
    """Two tables: every metric's mean ± 95 % CI half-width over seeds; the paired difference to the baseline."""
    methods = report["methods"]
    shown = [m for m in METRICS if any(m in entry for entry in methods.values())]
    lines = ["| method | seeds | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for name, entry in methods.items():
        failed = f" ({len(entry['failed'])} failed)" if entry["failed"] else ""
        lines.append(f"| {name} | {len(entry['seeds'])}{failed} | "
                     + " | ".join(_cell(entry.get(m, {}).get("summary")) for m in shown) + " |")
    lines += ["", f"Paired difference to {report['config']['baseline']} (same seeds): mean ± 95 % CI half-width (p, paired t-test)", "",
              "| method | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for name, entry in methods.items():
        if name == report["config"]["baseline"]:
            continue
        cells = []
        for metric in shown:
            diff = entry.get(metric, {}).get("vs_baseline")
            cells.append("–" if diff is None else f"{_cell(diff)} (p {_p(diff['p_value'])})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, report: Mapping[str, Any]) -> None:
    """arena.json / .csv / .md and the two plots (each written to a temporary name, then renamed)."""
    import csv
    import io

    write_text_atomic(out / "arena.json", json.dumps(report, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "metric", "n", "mean", "sd", "ci_low", "ci_high", "diff_mean", "diff_ci_low",
                     "diff_ci_high", "diff_p"])
    for method, entry in report["methods"].items():
        for metric in METRICS:
            if metric not in entry:
                continue
            s, d = entry[metric]["summary"], entry[metric].get("vs_baseline") or {}
            writer.writerow([method, metric, s["n"], s["mean"], s["sd"], s["ci_low"], s["ci_high"],
                             d.get("mean"), d.get("ci_low"), d.get("ci_high"), d.get("p_value")])
    write_text_atomic(out / "arena.csv", buffer.getvalue())
    write_text_atomic(out / "arena.md", "# Arena (offline rules proxies)\n\n" + markdown(report) + "\n")
    _plot_metrics(report, out / "arena.png")
    _plot_curves(report, out / "reward_curves.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_metrics(report: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    metrics = ("avg", "chexbert_micro_f1_14", "radgraph_partial_f1", "ratescore", "rouge_l")
    methods = list(report["methods"])
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics) + 2, 4))
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        entry = report["methods"][method]
        means = [entry.get(m, {}).get("summary", {}).get("mean", math.nan) for m in metrics]
        errors = [(entry.get(m, {}).get("summary", {}).get("ci_high") or mean) - mean
                  for m, mean in zip(metrics, means)]
        ax.bar([x + i * width for x in range(len(metrics))], means, width, yerr=errors, capsize=2, label=method)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(metrics))], metrics, rotation=15)
    ax.set_ylabel("mean over seeds (95 % CI)")
    _save(plt, fig, ax, path)


def _plot_curves(report: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for method, curves in report["reward_curves"].items():
        steps = min((len(c) for c in curves if c), default=0)
        if not steps:
            continue
        per_step = [summarize([c[i] for c in curves]) for i in range(steps)]
        xs = range(1, steps + 1)
        ax.plot(xs, [s.mean for s in per_step], label=method)
        if all(s.ci_low is not None for s in per_step):
            ax.fill_between(xs, [s.ci_low for s in per_step], [s.ci_high for s in per_step], alpha=0.2)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("on-policy reward (rules), mean and 95 % CI")
    _save(plt, fig, ax, path)


def _save(plt, fig, ax, path: Path) -> None:
    """Legend, layout, and the PNG written under a temporary name, then renamed."""
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def profile(name: str, methods: str | None = None, seeds: str | None = None, **task_overrides) -> ArenaConfig:
    if name not in PROFILES:
        raise ArenaError(f"unknown arena profile {name!r}; choose from {sorted(PROFILES)}")
    base = PROFILES[name]
    task = replace(base.task, **{k: v for k, v in task_overrides.items() if v is not None})
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else base.methods
    return ArenaConfig(task, chosen, parse_seeds(seeds) if seeds else base.seeds)
