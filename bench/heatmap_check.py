"""Does the Grad-CAM heatmap point at the lesion? Measured on HAM10000 validation images.

Each image goes through the engine as served (its input pixels and its heatmap); a rough lesion
outline (the dark region near the middle: ``skinscan_training.heatmap_check``) gives the share
of the heatmap's weight on the lesion and whether its hottest point is on the lesion, beside a
fixed spot at the image's centre as the baseline, and how much every map shares one pattern
whatever the photo. Prints the figures; ``--json`` writes them for the model card (``skinscan
evaluate --heatmap-report``), ``--sheet`` a picture: the mean of all maps, then the first images
with their heatmaps and outlines. Meaningful with the trained model only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    from _common import machine, model_path, shared_data, validation_ids

    from skinscan_engine import heatmap
    from skinscan_engine.engine import Engine, EngineConfig
    from skinscan_training.heatmap_check import check_image, lesion_outline, summarize
    from skinscan_training.plots import plot_heatmap_sheet

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--val-images", type=int, default=500)
    parser.add_argument("--split", help="split.json (default: the split rebuilt from seed 0)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--sheet", help="write a picture of the first images to this PNG")
    parser.add_argument("--sheet-images", type=int, default=23)
    args = parser.parse_args()

    engine = Engine.from_path(model_path(args.model), EngineConfig())
    print(f"machine: {machine()}")
    print(f"model: {engine.version}; input {engine.geometry.width}x{engine.geometry.height}")
    folder = shared_data() / "ham10000" / "images"
    ids = validation_ids(Path(args.split) if args.split else None, args.val_images)
    prepared = [engine.prepare((folder / f"{i}.jpg").read_bytes()) for i in ids]
    predictions = engine.predict_prepared(prepared)
    checks, sheet = [], []
    for name, prep, pred in zip(ids, prepared, predictions, strict=True):
        mask = lesion_outline(prep.pixels)
        if mask is None:
            continue  # no usable outline: the image counts among those scored only
        verdict = pred.result["verdict"]
        checks.append(check_image(name, verdict, mask, pred.cam))
        if len(sheet) < args.sheet_images:
            caption = f"{verdict}: {checks[-1].heatmap_share:.0%} on lesion"
            sheet.append((heatmap.overlay(prep.pixels, pred.cam), mask, caption))
    cams = np.stack([p.cam for p in predictions])
    precision = "bf16" if engine.bf16 else "fp32"
    report = {"model_version": engine.version, "precision": precision, **summarize(checks, cams)}
    print(report["summary"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"figures written to {args.json}")
    if args.sheet:
        mean_panel = (heatmap.colorize(cams.mean(axis=0)), None, f"mean of all {len(ids)} maps")
        plot_heatmap_sheet([mean_panel, *sheet], Path(args.sheet))
        print(f"picture written to {args.sheet}")


if __name__ == "__main__":
    main()
