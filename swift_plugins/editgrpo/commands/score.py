"""`editgrpo score`: clinical scores of hypothesis/reference pairs, one jsonl object per pair.

Inputs hold one report per line (a line may escape newlines as "\\n"); the two files must have
the same number of lines. Each output object: `index`, the metric keys asked for
(`chexbert_micro_f1_14`, `radgraph_partial_f1`, `ratescore`), `clinical` (their sum) and
`backend` (`real`, or `rules` = offline proxies, not comparable with the real metrics).
`--out` is replaced only when every pair is scored (a failed or interrupted run leaves the old
file), and the inputs are read first, so `--out` may even name `--hyps`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rewards.config import BACKENDS, REWARD_METRICS
from swift_plugins.editgrpo.commands import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hyps", required=True, type=Path, help="generated reports, one per line")
    parser.add_argument("--refs", required=True, type=Path, help="reference reports, one per line")
    parser.add_argument("--out", required=True, type=Path, help="output jsonl (one object per pair)")
    parser.add_argument("--metrics", nargs="+", choices=REWARD_METRICS, default=list(REWARD_METRICS))
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="real models or offline proxies (default: $EDITGRPO_REWARD_BACKEND or real)")
    parser.add_argument("--models-dir", default=None, help="default: $EDITGRPO_MODELS_DIR")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, auto (default: $EDITGRPO_DEVICE or auto)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per progress step and model batch (default 32)")


def _read_lines(path: Path) -> list[str]:
    """One report per "\n"-terminated line (a literal backslash-n is a line break inside a report);
    only "\n" ends a line, so a lone "\r", form feeds or U+2028 inside a report cannot shift the pairs
    (read as bytes: text mode would turn a lone "\r" into a line end)."""
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise CommandError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r").replace("\\n", "\n") for line in lines]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import rewards
    from datasets_registry.jsonl import jsonl_writer

    hyps, refs = _read_lines(args.hyps), _read_lines(args.refs)
    if len(hyps) != len(refs):
        raise CommandError(f"{args.hyps} has {len(hyps)} lines but {args.refs} has {len(refs)}; they must pair up")
    config = rewards.RewardConfig.from_env(backend=args.backend, models_dir=args.models_dir, device=args.device,
                                           batch_size=args.batch_size)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CommandError(f"{args.out}: {args.out.parent} exists and is not a directory") from None
    step = max(1, config.batch_size)
    # the writer first: a bad --out fails before any model is loaded; --out (even --hyps itself,
    # already read) is replaced only once every pair is scored
    with jsonl_writer(args.out) as out:
        scorers = rewards.build_from_config(config, args.metrics)  # MissingWeightsError: reported by cli.main, exit 1
        with tqdm(total=len(hyps), unit="pair", desc="scoring") as bar:
            for start in range(0, len(hyps), step):
                h, r = hyps[start:start + step], refs[start:start + step]
                columns = {scorer.name: scorer.score(h, r).values for scorer in scorers.values()}
                for offset in range(len(h)):
                    row = {"index": start + offset, **{name: values[offset] for name, values in columns.items()}}
                    row[rewards.CLINICAL_KEY] = sum(values[offset] for values in columns.values())
                    row["backend"] = config.backend
                    out.write(row)
                bar.update(len(h))
    if config.backend == "rules":
        from rewards.rules import PROXY_NOTE

        print(PROXY_NOTE)
    return 0
