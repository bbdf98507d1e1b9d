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

from rewards.entities.backends import ANALYZER_BACKENDS
from rewards.entities.rate_ner import POOLINGS
from swift_plugins.editgrpo.algorithm.edits import FP_SCOPES
from swift_plugins.editgrpo.algorithm.matching import MATCH_MODES
from swift_plugins.editgrpo.commands import CommandError, UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gen", required=True, help="generated report text")
    parser.add_argument("--ref", required=True, help="reference (gold) report text")
    parser.add_argument("--backend", choices=ANALYZER_BACKENDS, default=None,
                        help="entity analyzer: RaTE-NER + BioLORD, or the offline lexicon (default: $EDITGRPO_ANALYZER or lexicon)")
    parser.add_argument("--ner-dir", help="RaTE-NER dir (default: EDITGRPO_RATE_NER_DIR or "
                                          "$EDITGRPO_MODELS_DIR/RaTE-NER-Deberta)")
    parser.add_argument("--embedder-dir", help="BioLORD dir (default: EDITGRPO_BIOLORD_DIR or "
                                               "$EDITGRPO_MODELS_DIR/BioLORD-2023-C)")
    parser.add_argument("--device", default=None, help="rate backend device (default: $EDITGRPO_DEVICE or auto)")
    parser.add_argument("--pooling", choices=POOLINGS, default="mean",
                        help="rate backend entity pooling")
    # default: the run's EDITGRPO_* setting, else the trainer's default
    parser.add_argument("--match", choices=MATCH_MODES, default=None, help="FP/FN rule ($EDITGRPO_MATCH)")
    parser.add_argument("--tau", type=float, default=None, help="similarity threshold ($EDITGRPO_TAU)")
    parser.add_argument("--ops", type=int, default=None, help="successful operations per rollout ($EDITGRPO_OPS)")
    parser.add_argument("--fp-scope", choices=FP_SCOPES, default=None,
                        help="FP replacement scores the trigger entity (code) or all FP entities of the sentence "
                             "(paper) ($EDITGRPO_FP_SCOPE)")
    parser.add_argument("--contradictions", choices=("auto", "on", "off"), default="auto",
                        help="contradiction operation (auto: on only with --match paper)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the FN choice ($EDITGRPO_SEED)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from rewards.entities.backends import build_analyzer
    from swift_plugins.editgrpo.algorithm.edits import EditOptions, edit_report
    from swift_plugins.editgrpo.config import EditGRPOConfig

    try:
        config = EditGRPOConfig.from_env(device=args.device)
        given = {"ops_per_rollout": args.ops, "tau": args.tau, "match": args.match, "fp_scope": args.fp_scope,
                 "seed": args.seed}
        defaults = config.edit_options
        options = EditOptions(**{k: getattr(defaults, k) if v is None else v for k, v in given.items()},
                              contradictions={"auto": None, "on": True, "off": False}[args.contradictions])
    except ValueError as err:
        raise UsageError(str(err)) from None
    backend = args.backend or (config.analyzer if os.environ.get("EDITGRPO_ANALYZER") else "lexicon")
    if backend == "rate":
        ner_dir, embedder_dir = _rate_dirs(args)
        try:
            analyzer = build_analyzer("rate", ner_dir=ner_dir, embedder_dir=embedder_dir, device=config.reward.device,
                                      pooling=args.pooling)
        except (FileNotFoundError, ValueError) as err:
            raise CommandError(str(err)) from None
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
