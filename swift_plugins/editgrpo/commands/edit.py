"""`editgrpo edit`: show the post-rollout edit EditGRPO makes to one generated report.

A researcher's window on the rule: the same analyzer, matching and edit code the trainer runs.
Prints the edited report and one line per operation, or (``--json``) one object with
``edited``, ``changed``, ``ops`` (each with ``op``, ``old_sentence``, ``new_sentence``,
``trigger``, ``score``), plus ``generated``, ``reference`` and the options used.
"""
from __future__ import annotations

import argparse
import json
import os

from swift_plugins.editgrpo.algorithm.matching import DEFAULT_TAU, MATCH_MODES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gen", required=True, help="generated report text")
    parser.add_argument("--ref", required=True, help="reference (gold) report text")
    parser.add_argument("--backend", choices=("lexicon", "rate"), default="lexicon",
                        help="entity analyzer: offline lexicon (default) or RaTE-NER + BioLORD")
    parser.add_argument("--ner-dir", help="RaTE-NER dir (default: EDITGRPO_RATE_NER_DIR or "
                                          "$EDITGRPO_MODELS_DIR/RaTE-NER-Deberta)")
    parser.add_argument("--embedder-dir", help="BioLORD dir (default: EDITGRPO_BIOLORD_DIR or "
                                               "$EDITGRPO_MODELS_DIR/BioLORD-2023-C)")
    parser.add_argument("--device", default=os.environ.get("EDITGRPO_DEVICE", "auto"), help="rate backend device")
    parser.add_argument("--pooling", choices=("mean", "unmasked_mean", "cls"), default="mean",
                        help="rate backend entity pooling")
    parser.add_argument("--match", choices=MATCH_MODES, default="affinity", help="FP/FN rule (spec §3)")
    parser.add_argument("--tau", type=float, default=DEFAULT_TAU, help="similarity threshold")
    parser.add_argument("--ops", type=int, default=1, help="successful operations per rollout")
    parser.add_argument("--fp-scope", choices=("trigger", "sentence"), default="trigger",
                        help="FP replacement scores the trigger entity (code) or all FP entities of the sentence (paper)")
    parser.add_argument("--contradictions", choices=("auto", "on", "off"), default="auto",
                        help="contradiction operation (auto: on only with --match paper)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the FN choice")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from rewards.entities.backends import build_analyzer
    from swift_plugins.editgrpo.algorithm.edits import EditOptions, edit_report

    try:
        options = EditOptions(ops_per_rollout=args.ops, tau=args.tau, match=args.match, fp_scope=args.fp_scope,
                              contradictions={"auto": None, "on": True, "off": False}[args.contradictions],
                              seed=args.seed)
    except ValueError as err:
        raise SystemExit(f"editgrpo edit: {err}") from None
    if args.backend == "rate":
        ner_dir, embedder_dir = _rate_dirs(args)
        try:
            analyzer = build_analyzer("rate", ner_dir=ner_dir, embedder_dir=embedder_dir, device=args.device,
                                      pooling=args.pooling)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"editgrpo edit: {err}") from None
    else:
        analyzer = build_analyzer("lexicon")
    gen, ref = analyzer.analyze([args.gen, args.ref])
    result = edit_report(gen, ref, options)
    if args.json:
        print(json.dumps({
            "edited": result.text, "changed": result.changed, "ops": [op.to_dict() for op in result.ops],
            "generated": gen.text, "reference": ref.text, "backend": analyzer.name,
            "options": {"match": options.match, "tau": options.tau, "ops_per_rollout": options.ops_per_rollout,
                        "fp_scope": options.fp_scope, "contradictions": options.contradiction_op,
                        "seed": options.seed},
        }, ensure_ascii=False))
        return 0
    print(result.text)
    if not result.changed:
        print("# unchanged")
    for op in result.ops:
        score = "-" if op.to_dict()["score"] is None else f"{op.score:.3f}"
        print(f"# {op.op} trigger={op.trigger!r} score={score}")
        if op.old_sentence:
            print(f"#   - {op.old_sentence}")
        if op.new_sentence:
            print(f"#   + {op.new_sentence}")
    return 0


def _rate_dirs(args: argparse.Namespace) -> tuple[str, str]:
    """Explicit flags first, else the reward scorers' model layout (rewards.paths)."""
    if args.ner_dir and args.embedder_dir:
        return args.ner_dir, args.embedder_dir
    from rewards.paths import ModelPaths

    paths = ModelPaths.from_env()
    return args.ner_dir or str(paths.rate_ner_dir), args.embedder_dir or str(paths.biolord_dir)
