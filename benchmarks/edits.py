"""Edit decisions per second on IU-XRay (generated, reference) pairs.

Pairs mimic a GRPO step: each reference (an IU-XRay FINDINGS section) has G rollouts, played
by other IU-XRay reports. Rows:

* decision logic alone: `edit_report` on pre-analysed pairs (affinity and paper rules);
* lexicon end-to-end: analysis through `CachedAnalyzer` (rollout de-dup, reference cache) + edits;
* rate end-to-end: the same with a full-size random RaTE-NER (DeBERTa-v3-base shape) + BioLORD
  (MPNet-base shape) analyzer, NER-bound; fewer pairs by default to keep the run short on CPU.

    python benchmarks/edits.py [--pairs 1024] [--model-pairs 16] [--device cpu|cuda] [--skip-model]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets_registry.iu_xray import read_findings  # noqa: E402
from rewards.entities.cache import CachedAnalyzer  # noqa: E402
from swift_plugins.editgrpo.algorithm.edits import EditOptions, edit_report  # noqa: E402
from rewards.entities.lexicon import LexiconAnalyzer  # noqa: E402
from swift_plugins.editgrpo.algorithm.selection import pair_rng  # noqa: E402

def make_pairs(findings: list[str], n_pairs: int, group_size: int, seed: int = 0) -> list[tuple[str, str]]:
    """n_pairs (gen, ref) pairs in groups of `group_size` rollouts sharing one reference."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n_pairs:
        ref = rng.choice(findings)
        pairs += [(rng.choice(findings), ref) for _ in range(group_size)]
    return pairs[:n_pairs]


def decide(analysed, options: EditOptions) -> int:
    changed = 0
    for index, (gen, ref) in enumerate(analysed):
        changed += edit_report(gen, ref, options, pair_rng(options.seed, 0, index)).changed
    return changed


class Timer:
    """Wall and CPU seconds of a block (CPU time shows how much of the wall time was contention)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def end_to_end(analyzer, pairs, options: EditOptions) -> tuple[Timer, Timer, CachedAnalyzer, float]:
    """Timers of the analysis and of the decisions for all pairs through a fresh cache, the cache,
    and the mean entity count per analysed text."""
    cached = CachedAnalyzer(analyzer)
    with Timer() as analysis:
        gens, refs = cached.analyze_pairs([g for g, _ in pairs], [r for _, r in pairs])
    with Timer() as decisions:
        decide(list(zip(gens, refs)), options)
    return analysis, decisions, cached, sum(len(a.entities) for a in gens + refs) / max(1, len(pairs) * 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--model-pairs", type=int, default=16,
                        help="pairs for the full-size model row (CPU: ~2 s per report on 2 cores)")
    parser.add_argument("--group-size", type=int, default=4, help="rollouts per reference (G)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()

    findings = read_findings()
    pairs = make_pairs(findings, args.pairs, args.group_size)
    rows: list[tuple[str, int, float, float, str]] = []

    lexicon = LexiconAnalyzer()
    analysed = list(zip(lexicon.analyze([g for g, _ in pairs]), lexicon.analyze([r for _, r in pairs])))
    for match in ("affinity", "paper"):
        with Timer() as timer:
            changed = decide(analysed, EditOptions(match=match))
        rows.append((f"decision logic, pre-analysed ({match})", len(pairs), timer.wall, timer.cpu,
                     f"{changed} changed"))

    analysis, decisions, cached, _ = end_to_end(LexiconAnalyzer(), pairs, EditOptions())
    rows.append(("lexicon end-to-end (cache + edits)", len(pairs), analysis.wall + decisions.wall,
                 analysis.cpu + decisions.cpu, f"analysis {analysis.wall:.2f}s: {cached.stats.rollouts_analysed} "
                 f"rollouts + {cached.stats.reference_misses} refs"))

    if not args.skip_model:
        from rewards.entities.rate_ner import RateAnalyzer
        from rewards.testing import build_rate_models

        model_pairs = make_pairs(findings, args.model_pairs, args.group_size, seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            with Timer() as built:
                dirs = build_rate_models(tmp, findings, size="base")
            analyzer = RateAnalyzer(*dirs, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
            analyzer.analyze(findings[:args.batch_size])  # warm-up
            analysis, decisions, cached, entities = end_to_end(analyzer, model_pairs, EditOptions())
        rows.append((f"rate end-to-end, random base models ({args.device}, {args.dtype})", len(model_pairs),
                     analysis.wall + decisions.wall, analysis.cpu + decisions.cpu,
                     f"NER+embed {analysis.wall:.1f}s: {cached.stats.rollouts_analysed} rollouts + "
                     f"{cached.stats.reference_misses} refs, {entities:.0f} entities/report; "
                     f"decisions {decisions.wall:.3f}s; "
                     f"models built in {built.wall:.0f}s"))

    print(f"\nEdit decisions per second (IU-XRay pairs, G={args.group_size}, tau=0.6, 1 op)")
    print(f"{'setting':<52} {'pairs':>5} {'wall s':>7} {'cpu s':>7} {'decisions/s':>11}  notes")
    for name, count, wall, cpu, notes in rows:
        print(f"{name:<52} {count:>5} {wall:>7.2f} {cpu:>7.2f} {count / wall:>11.{0 if count / wall >= 100 else 2}f}  {notes}")


if __name__ == "__main__":
    main()
