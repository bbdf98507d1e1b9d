"""Composite clinical reward throughput for one GRPO step: batched + cached vs the reference style.

One step = `--prompts` prompts x `--generations` rollouts (paper: 32 x 5 = 160 pairs), real
IU-XRay reports as references and rollouts (each group repeats one rollout, as sampled groups
often do), full-size random models of the real architectures (CheXbert = BERT-base + heads,
RadGraph-XL = DyGIE++ on BERT-base, RaTE-NER = DeBERTa-v3-base, BioLORD = MPNet-base) on CPU.

* ours: `ClinicalScorer(build_scorers(...)).score(hyps, refs)`: distinct texts annotated once,
  batches of `--batch-size`, RadGraph several reports per forward pass, RaTE-NER once per
  distinct sentence; the reference LRU cache and the RaTE caches start empty (a step whose references were never seen). The next epoch's step (same
  references, new rollouts) is shown too.
* reference style (the EditGRPO reference: one HTTP request per pair): for each pair and each
  metric, the hypothesis and the reference annotated in their own calls, no cache, no dedup
  (the RaTE analyzer's phrase-vector and sentence-span caches, process-wide like its model, are
  switched off; its NER still tags the sentences of one report in one batch, as RaTEScore does).
  It runs the packages' model code (`upstream_model_code`), and once more with ours, to separate
  what batching and caching buy from what the faster model code buys. It is timed on
  `--ref-pairs` pairs and extrapolated to the step (the table says so).

    .venv/bin/python benchmarks/rewards.py                 # builds the models once under --models-dir
    .venv/bin/python benchmarks/rewards.py --size tiny --prompts 4 --ref-pairs 5   # smoke run
    python benchmarks/rewards.py --device cuda --dtype bfloat16 --edits   # part 1 of the GPU check (benchmarks/gpu_check.sh)
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets_registry.iu_xray import BUNDLED_REPORTS_CSV, read_findings  # noqa: E402
from swift_plugins.editgrpo.config import EditGRPOConfig  # noqa: E402
from rewards.config import DTYPES, RewardConfig  # noqa: E402
from rewards.testing import build_all_missing  # noqa: E402


def step_pairs(reports: list[str], prompts: int, generations: int, epoch: int = 0) -> tuple[list[str], list[str]]:
    """References = reports[0:prompts]; rollouts = other reports (new ones each epoch), the last of each group a repeat."""
    hyps, refs = [], []
    pool = reports[1000:]
    for p in range(prompts):
        group = [pool[((epoch * prompts + p) * generations + g) % len(pool)] for g in range(generations - 1)]
        hyps += group + [group[0]]
        refs += [reports[p]] * generations
    return hyps, refs


def reference_style(scorers: dict, hyps: list[str], refs: list[str]) -> float:
    """One pair per call per metric, nothing cached; returns seconds.

    As the packages do it: CheXbert and RadGraph label one report per forward pass, RaTEScore
    tags the sentences of the pair's two reports together.
    """
    from templates.report import sentence_key

    start = time.perf_counter()
    for hyp, ref in zip(hyps, refs):
        hyp, ref = sentence_key(hyp), sentence_key(ref)
        for name, scorer in scorers.items():
            pair = scorer.annotate([hyp, ref]) if name == "ratescore" else scorer.annotate([hyp]) + scorer.annotate([ref])
            scorer.compare(*pair)
    return time.perf_counter() - start


@contextmanager
def upstream_model_code():
    """The packages' own model code paths: radgraph's k x k x 3d span-pair tensor, DeBERTa over its full relative span."""
    from radgraph.dygie.models.relation import RelationExtractor

    import rewards.entities.rate_ner as rate_ner
    from rewards.radgraph import UPSTREAM_RELATION_SCORING

    ours = (RelationExtractor._compute_span_pair_embeddings, RelationExtractor._compute_relation_scores, rate_ner.narrowed_relative_span)
    RelationExtractor._compute_span_pair_embeddings = staticmethod(UPSTREAM_RELATION_SCORING["pairs"])
    RelationExtractor._compute_relation_scores = UPSTREAM_RELATION_SCORING["scores"]
    rate_ner.narrowed_relative_span = lambda model, seq_len: nullcontext(False)
    try:
        yield
    finally:
        (RelationExtractor._compute_span_pair_embeddings, RelationExtractor._compute_relation_scores,
         rate_ner.narrowed_relative_span) = (staticmethod(ours[0]), ours[1], ours[2])


def edit_step(config: EditGRPOConfig, clinical, hyps: list[str], refs: list[str], generations: int) -> tuple[float, float, int]:
    """(edit seconds, reward seconds, rollouts edited) of one step as the trainer runs it, its analyzer's models loaded first."""
    from rewards.entities.cache import CachedAnalyzer
    from swift_plugins.editgrpo.algorithm.step import EDITED, edit_targets
    from rewards.entities.backends import build_analyzer

    analyzer = build_analyzer(config.analyzer, **config.analyzer_options)
    analyzer.analyze(["Heart size is normal."])
    analyzer.embed_cache.clear()
    start = time.perf_counter()
    records = edit_targets(hyps, refs, generations, range(len(hyps)), CachedAnalyzer(analyzer),
                           config.selection_options, config.edit_options, step=0)
    edited = list(hyps)
    for record in records:
        if record.status == EDITED:
            edited[record.target] = record.text
    edit_s = time.perf_counter() - start
    start = time.perf_counter()
    clinical.score(edited, refs)
    return edit_s, time.perf_counter() - start, sum(r.status == EDITED for r in records)


def dense_gflop(model, tokens: int) -> float:
    """2 x weights outside embedding tables x tokens: a forward pass's matrix work (attention scores left out)."""
    import torch

    embeddings = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return 2.0 * (sum(p.numel() for p in model.parameters()) - embeddings) * tokens / 1e9


def cold_step_gflop(scorers: dict, radgraph_encoder: Path, texts: list[str], phrases: list[str]) -> dict[str, float]:
    """The matrix work our cold step cannot avoid: each model over the distinct texts (sentences, phrases) it reads."""
    from transformers import AutoTokenizer

    from rewards.entities.rate_ner import tagged_sentences
    from templates.report import sentence_key

    texts = sorted({sentence_key(t) for t in texts})
    labeler, radgraph, analyzer = scorers["chexbert"].labeler, scorers["radgraph"].model, scorers["ratescore"].analyzer
    wordpieces = AutoTokenizer.from_pretrained(str(radgraph_encoder))
    sentences = sorted({s for t in texts for _, s in tagged_sentences(t)})
    return {
        "chexbert": dense_gflop(labeler.model, sum(len(labeler.encode(t)) for t in texts)),
        "radgraph": dense_gflop(radgraph.model, sum(len(wordpieces(" ".join(radgraph.words(t)))["input_ids"]) for t in texts if t)),
        "rate-ner": dense_gflop(analyzer.ner_model, sum(len(ids) for ids in analyzer.ner_tokenizer(sentences, truncation=True)["input_ids"])),
        "entity embedder": dense_gflop(analyzer.embed_model, sum(len(ids) for ids in analyzer._tokenize_phrases(phrases)["input_ids"])),
    }


def gemm_gflops(device: str) -> float:
    """fp32 matrix-multiply rate of this device at the current thread count (best of 5; BERT-base FFN shapes)."""
    import torch

    a, b = torch.randn(2048, 768, device=device), torch.randn(768, 3072, device=device)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2 * 2048 * 768 * 3072 / best / 1e9


def device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device if device != 'auto' else 'cuda'))}"
    return "CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--ref-pairs", type=int, default=16, help="pairs the reference style is timed on (then extrapolated)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: /tmp/editgrpo-bench-models-<size>")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reports", type=Path, default=BUNDLED_REPORTS_CSV, help="IU-XRay indiana_reports.csv")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (the scorers' and the edit analyzer's)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--edits", action="store_true",
                        help="also time a cold EditGRPO step: the trainer's edit analysis and edits, then the reward of the edited batch")
    args = parser.parse_args()

    import torch

    import rewards

    if args.threads:
        torch.set_num_threads(args.threads)
    reports = read_findings(args.reports)
    models_dir = args.models_dir or Path(f"/tmp/editgrpo-bench-models-{args.size}")
    t0 = time.perf_counter()
    build_all_missing(models_dir, reports[:2000], args.size)
    build_s = time.perf_counter() - t0
    paths = rewards.ModelPaths.from_env(models_dir, environ={})
    metrics = rewards.REWARD_METRICS

    def fresh_scorers() -> dict:
        return rewards.build_scorers(metrics, backend="real", paths=paths, device=args.device, dtype=args.dtype,
                                     batch_size=args.batch_size)

    hyps, refs = step_pairs(reports, args.prompts, args.generations)
    warm = fresh_scorers()
    for scorer in warm.values():  # load every model once (the process-wide load is not part of a step)
        scorer.score(reports[-2:], reports[-4:-2])

    analyzer = warm["ratescore"].analyzer  # its caches are process-wide, like the model: start the step cold
    phrases, sentences = analyzer.embed_cache, analyzer.span_cache
    for cache in (phrases, sentences):
        cache.clear()
    ours = fresh_scorers()
    clinical = rewards.ClinicalScorer(ours)
    per_metric: dict[str, float] = {}
    start = time.perf_counter()
    for name, scorer in ours.items():
        t = time.perf_counter()
        scorer.score(hyps, refs)
        per_metric[name] = time.perf_counter() - t
    ours_s = time.perf_counter() - start
    step_phrases = phrases.keys()  # the entity phrases of the cold step
    next_hyps, _ = step_pairs(reports, args.prompts, args.generations, epoch=1)
    start = time.perf_counter()
    values = clinical.score(next_hyps, refs).values  # the next epoch: same references (cached), new rollouts
    cached_s = time.perf_counter() - start
    assert len(values) == len(hyps)

    cache_stats = ", ".join(f"{name}: {len(cache)} kept, {cache.hits} hits / {cache.misses} misses"
                            for name, cache in (("phrase vectors", phrases), ("sentence spans", sentences)))
    for cache in (phrases, sentences):
        cache.clear()
    edit_s = None
    if args.edits:
        config = EditGRPOConfig(reward=RewardConfig(models_dir=str(models_dir), device=args.device, dtype=args.dtype,
                                                    batch_size=args.batch_size))
        edit_s, edited_reward_s, edited = edit_step(config, rewards.ClinicalScorer(fresh_scorers()), hyps, refs, args.generations)
        for cache in (phrases, sentences):
            cache.clear()
    for cache in (phrases, sentences):
        cache.capacity = 0
    n_ref = min(args.ref_pairs, len(hyps))
    with upstream_model_code():
        ref_sample_s = reference_style(fresh_scorers(), hyps[:n_ref], refs[:n_ref])
    ref_ours_sample_s = reference_style(fresh_scorers(), hyps[:n_ref], refs[:n_ref])
    ref_s, ref_ours_s = (sample * len(hyps) / n_ref for sample in (ref_sample_s, ref_ours_sample_s))

    distinct = len(set(hyps) | set(refs))
    print(f"composite reward (RadGraph + CheXbert + RaTEScore), {args.prompts} prompts x {args.generations} = {len(hyps)} pairs, "
          f"{args.size} random models, {device_name(args.device)}, {args.dtype}, torch CPU threads {torch.get_num_threads()}, "
          f"batch {args.batch_size}")
    print(f"models built/loaded from {models_dir} (build {build_s:.0f} s, not timed below)")
    print()
    print(f"| arm | step time (s) | pairs/s | vs reference |")
    print(f"|---|---|---|---|")
    for label, total, sample in (("reference style: 1 pair/call, no cache, upstream model code", ref_s, ref_sample_s),
                                 ("the same with our model code (factorised relations, narrowed span)", ref_ours_s, ref_ours_sample_s)):
        print(f"| {label} ({n_ref} pairs timed: {sample:.1f} s, x{len(hyps) / n_ref:.1f}) "
              f"| {total:.1f} | {len(hyps) / total:.2f} | {ref_s / total:.1f}x |")
    print(f"| ours: batched, {distinct} distinct texts, cold cache | {ours_s:.1f} | {len(hyps) / ours_s:.2f} | {ref_s / ours_s:.1f}x |")
    print(f"| ours: next epoch (new rollouts, references cached) | {cached_s:.1f} | {len(hyps) / cached_s:.2f} | {ref_s / cached_s:.1f}x |")
    if edit_s is not None:
        step_s = edit_s + edited_reward_s
        print(f"| EditGRPO step, cold: edit analysis {edit_s:.2f} s ({edited} rollouts edited) + reward {edited_reward_s:.2f} s "
              f"| {step_s:.2f} | {len(hyps) / step_s:.2f} | |")
    print()
    print("ours per metric (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in per_metric.items()))
    if args.device == "cpu":
        work = cold_step_gflop(warm, paths.resolve_radgraph_encoder(), hyps + refs, step_phrases)
        rate = gemm_gflops(args.device)
        floor = sum(work.values()) / rate
        print(f"matrix work of our cold step: {sum(work.values()):.0f} GFLOP ("
              + ", ".join(f"{name} {gflop:.0f}" for name, gflop in work.items())
              + f"); this CPU multiplies fp32 matrices at {rate:.0f} GFLOP/s, so the step needs >= {floor:.1f} s: "
              f"at most {ref_s / floor:.1f}x the reference style here (ours runs at {sum(work.values()) / ours_s:.0f} GFLOP/s)")
    print(f"RaTE caches after both steps of ours: {cache_stats}")


if __name__ == "__main__":
    main()
