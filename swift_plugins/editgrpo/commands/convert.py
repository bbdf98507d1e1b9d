"""`editgrpo convert {mimic-cxr,rexgradient,iu-xray,padchest-gr} --src DIR --out DIR`.

Reads a data set in the layout its owners distribute and writes out/{train,validation,test}.jsonl
(one study per row, ms-swift multimodal format) plus out/summary.json; prints a per-split
summary. Exit status 1 with a message for input that cannot be converted correctly.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from datasets_registry.catalog import CONVERTERS
from datasets_registry.pipeline import OVER_MAX

DATASETS = tuple(CONVERTERS)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--src", type=Path, required=True, help="data set folder in its native layout")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the split jsonl files")
    parser.add_argument("--max-images", type=int, default=None,
                        help="images per sample, current + prior (default: 6 MIMIC/ReXGradient, 2 IU/PadChest)")
    parser.add_argument("--min-images", type=int, default=None,
                        help="current-study views a sample needs; fewer: skipped, counted (default: 2 IU-XRay, 1 otherwise)")
    parser.add_argument("--over-max", choices=OVER_MAX, default=None,
                        help="study with more views than --max-images: keep the first (frontal-first) views, "
                             "or drop it (default: drop for ReXGradient, truncate otherwise)")
    parser.add_argument("--no-priors", action="store_true", help="do not add prior-study images")
    parser.add_argument("--skip-missing", action="store_true",
                        help="drop missing image files and count them instead of failing")
    parser.add_argument("--placeholder-images", action="store_true",
                        help="write small generated images under OUT/placeholder_images for missing files (testing)")
    parser.add_argument("--max-loss-fraction", type=float, default=None,
                        help="fail when one skip reason takes more than this share of the records read "
                             "or when no study is written (default: 0.5; 1 turns the check off)")
    parser.add_argument("--reports", type=Path, default=None,
                        help="MIMIC-CXR: folder holding files/pXX/pXXXXXXXX/sXXXXXXXX.txt (default: --src)")
    parser.add_argument("--split-seed", type=int, default=0, help="IU-XRay without annotation.json: seed of the hashed 7:1:2 split")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from datasets_registry import convert

    loader_options = {"mimic-cxr": {"reports": args.reports}, "iu-xray": {"split_seed": args.split_seed}}
    # ConversionError (input that cannot be converted correctly): cli.main reports it, exit 1
    summary = convert(
        args.dataset, args.src, args.out, loader_options.get(args.dataset),
        max_images=args.max_images, min_images=args.min_images, over_max=args.over_max, priors=False if args.no_priors else None,
        skip_missing=args.skip_missing, placeholder_images=args.placeholder_images,
        max_loss_fraction=args.max_loss_fraction, show_progress=not args.quiet,
    )
    print(summary.table())
    return 0
