"""``skinscan evaluate``: metrics, intervals and plots for a trained model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model stem, weights, card or folder")
    parser.add_argument("--data", help="HAM10000 folder: score a part of the split (--part)")
    parser.add_argument(
        "--part",
        choices=("test", "validation", "training"),  # evaluate.PARTS
        default="test",
        help="part of the split to score with --data (validation: for ship decisions; "
        "training: how closely the network fits its own images)",
    )
    parser.add_argument(
        "--split",
        help="split.json of the training run (default: rebuilt from the seed on the model card); "
        "one made with another seed than the card's split_seed is refused",
    )
    parser.add_argument(
        "--allow-other-split",
        action="store_true",
        help="score a --split made with another seed anyway (its figures may include images "
        "the model was trained on)",
    )
    parser.add_argument("--isic2017", help="ISIC 2017 folder: external melanoma-vs-rest check")
    parser.add_argument("--out", default="evaluation", help="folder for report.json and plots")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--cache-dir", help="cache for decoded HAM10000 images")
    parser.add_argument(
        "--write-card", action="store_true", help="store the measured figures in the model card"
    )
    parser.add_argument("--doc", help="also render the Markdown model card to this path")
    parser.add_argument("--ood-report", help="JSON from bench/ood_check.py --json to cite in --doc")
    parser.add_argument(
        "--heatmap-report", help="JSON from bench/heatmap_check.py --json to cite in --doc"
    )


def run(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    if not args.data and not args.isic2017:
        print(
            "skinscan evaluate: nothing to evaluate: give --data and/or --isic2017", file=sys.stderr
        )
        return 2
    if args.part != "test" and (args.write_card or args.doc):
        print(
            "skinscan evaluate: --write-card and --doc take the test part's figures: "
            "leave out --part",
            file=sys.stderr,
        )
        return 2
    report = evaluate(
        Path(args.model),
        Path(args.data) if args.data else None,
        Path(args.out),
        split_file=Path(args.split) if args.split else None,
        isic_dir=Path(args.isic2017) if args.isic2017 else None,
        n_boot=args.bootstrap,
        write_card=args.write_card,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        part=args.part,
        allow_other_split=args.allow_other_split,
    )
    key = f"ham10000_{args.part}"
    summary = {k: v for k, v in report.items() if k != key}
    if key in report:
        ham = report[key]
        summary[key] = {
            k: ham[k]
            for k in (
                "images",
                "lesions",
                "malignant_vs_benign",
                "calibration",
                "accuracy_7",
                "unknown_rate",
                "light_colour",
            )
        }
    print(json.dumps(summary, indent=1))
    if args.doc and "ham10000_test" in report:
        if report["targets"]["auc"]["measured"] is None:
            raise ValueError("the test part's AUC is undefined (one class): no model card doc")
        import os

        from skinscan_engine.model_card import resolve_paths

        from .card_doc import write

        doc = Path(args.doc)
        plots = os.path.relpath(Path(args.out).resolve(), doc.resolve().parent)
        ood = Path(args.ood_report) if args.ood_report else None
        heatmaps = Path(args.heatmap_report) if args.heatmap_report else None
        card = resolve_paths(Path(args.model))[1]
        write(card, Path(args.out) / "report.json", doc, plots, ood, heatmaps)
        print(f"model card written to {doc}")
    print(f"report and plots in {args.out}/")
    return 0
