"""``skinscan predict``: score images or folders of images, write one CSV row per image.

Rows: ``image,verdict,p_malignant,confidence,top_class,ood_score,model_version,error``. A file
that can't be read gets verdict ``error`` and the reason in ``error``; the run goes on.
Exit status: 0 all scored, 1 some rows are errors, 2 nothing to do or no model.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from skinscan_common.services.batch import RESULT_COLUMNS, RESULT_FIELDS

# One CSV layout for this command and the batch jobs' results.csv.
COLUMNS = RESULT_COLUMNS
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGE_OR_DIR",
        help="image files, or folders searched recursively for images",
    )
    parser.add_argument("--csv", metavar="OUT", help="write the CSV here (default: stdout)")
    parser.add_argument(
        "--heatmaps",
        metavar="DIR",
        help="write NAME.heatmap.png (raw map) and NAME.overlay.png here",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="model folder, weights or card (default: $SKINSCAN_MODEL_PATH or models/)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def find_images(inputs: Iterable[str]) -> list[Path]:
    """Files as given (readable or not: they get a row), folders' image files sorted."""
    found: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        else:
            found.append(path)
    return found


def _chunks(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _HeatmapNames:
    """Unique output names: ``stem``, then ``stem-2``, ``stem-3`` on collisions."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, path: Path) -> str:
        name, n = path.stem, 1
        while name in self.used:
            n += 1
            name = f"{path.stem}-{n}"
        self.used.add(name)
        return name


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from skinscan_engine.engine import Engine, EngineConfig, Prepared
    from skinscan_engine.preprocessing import ImageDecodeError

    images = find_images(args.inputs)
    if not images:
        print("skinscan predict: no images found", file=sys.stderr)
        return 2
    model_path = args.model or os.environ.get("SKINSCAN_MODEL_PATH", "models")
    config = EngineConfig.from_env(
        precision=args.precision,
        max_batch_size=max(1, args.batch_size),
        **({"device": args.device} if args.device else {}),
    )
    try:
        engine = Engine.from_path(model_path, config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"skinscan predict: cannot load the model: {exc}", file=sys.stderr)
        return 2
    heatmap_dir = Path(args.heatmaps) if args.heatmaps else None
    if heatmap_dir:
        heatmap_dir.mkdir(parents=True, exist_ok=True)
    names = _HeatmapNames()

    def prepare(path: Path) -> Prepared | str:
        try:
            return engine.prepare(path.read_bytes())
        except ImageDecodeError as exc:
            return f"{exc.code}: {exc.message}"
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc.__class__.__name__}"

    out: TextIO = open(args.csv, "w", newline="") if args.csv else sys.stdout  # noqa: SIM115
    errors = 0
    try:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        bar = tqdm(total=len(images), unit="img", disable=args.no_progress, file=sys.stderr)
        # Decoding runs in threads (Pillow releases the GIL) while the model runs batches.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for chunk in _chunks(images, config.max_batch_size):
                prepared = list(pool.map(prepare, chunk))
                good = [p for p in prepared if isinstance(p, Prepared)]
                answers = iter(engine.predict_prepared(good))
                for path, item in zip(chunk, prepared, strict=True):
                    row: dict[str, Any] = {"image": str(path)}
                    if isinstance(item, str):
                        errors += 1
                        row.update(verdict="error", error=item, model_version=engine.version)
                    else:
                        pred = next(answers)
                        row.update({k: pred.result[k] for k in RESULT_FIELDS}, error="")
                        if heatmap_dir:
                            name = names(path)
                            (heatmap_dir / f"{name}.heatmap.png").write_bytes(pred.heatmap_png())
                            (heatmap_dir / f"{name}.overlay.png").write_bytes(pred.overlay_png())
                    writer.writerow(row)
                bar.update(len(chunk))
        bar.close()
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m skinscan.commands.predict``)."""
    parser = argparse.ArgumentParser(prog="skinscan predict", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
