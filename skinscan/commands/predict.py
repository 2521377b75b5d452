"""``skinscan predict``: score images or folders of images, write one CSV row per image.

Rows: ``image,verdict,p_malignant,confidence,top_class,ood_score,model_version,error``, and
with ``--heatmaps`` also ``heatmap,overlay`` (the files written for that row). A file that
can't be read gets verdict ``error`` and the reason in ``error``; the run goes on.
Exit status: 0 all scored, 1 some rows are errors, 2 nothing to do, no model or bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from skinscan_common.services.batch import RESULT_COLUMNS, RESULT_FIELDS

# One CSV layout for this command and the batch jobs' results.csv; --heatmaps adds two columns.
COLUMNS = RESULT_COLUMNS
HEATMAP_COLUMNS = ("heatmap", "overlay")
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
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
        help="write IMAGE.heatmap.png (raw map) and IMAGE.overlay.png here, in the inputs' "
        "folder layout (as `skinscan batch` does); the CSV gains heatmap and overlay columns",
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


def heatmap_base(images: list[Path], inputs: Iterable[str], out_dir: Path) -> dict[Path, Path]:
    """Each image's output stem under ``out_dir``: its path relative to the inputs' common
    folder, suffix kept (``a/x.jpg`` -> ``out_dir/a/x.jpg``), so two images never share one."""
    roots = [os.path.abspath(raw if Path(raw).is_dir() else Path(raw).parent) for raw in inputs]
    common = os.path.commonpath(roots)
    return {path: out_dir / os.path.relpath(os.path.abspath(path), common) for path in images}


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse unusable --csv and --heatmaps before the model is loaded (ValueError)."""
    if args.csv:
        folder = Path(args.csv).parent
        if not folder.is_dir():
            raise ValueError(f"--csv {args.csv}: folder {folder} does not exist")
        if Path(args.csv).is_dir():
            raise ValueError(f"--csv {args.csv} is a folder: give a file name")
    if args.heatmaps and Path(args.heatmaps).exists() and not Path(args.heatmaps).is_dir():
        raise ValueError(f"--heatmaps {args.heatmaps} is a file, not a folder")


def check_device(name: str) -> None:
    """Refuse a device torch can't use here, with the reason (ValueError)."""
    if not DEVICE.fullmatch(name):
        raise ValueError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is usable here (use cpu or auto)")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")


@contextlib.contextmanager
def csv_output(path: str | None) -> Iterator[TextIO]:
    """The CSV stream: the file, or stdout. A file name that is not valid UTF-8 (a Linux name
    is any bytes) is written back as its own bytes (surrogateescape) instead of failing."""
    if path:
        with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as out:
            yield out
        return
    stdout = sys.stdout
    errors = getattr(stdout, "errors", None)
    if isinstance(stdout, io.TextIOWrapper) and errors != "surrogateescape":
        stdout.reconfigure(errors="surrogateescape")
        try:
            yield stdout
        finally:
            stdout.reconfigure(errors=errors)
    else:
        yield stdout


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from skinscan_engine.engine import Engine, EngineConfig, Prepared
    from skinscan_engine.preprocessing import ImageDecodeError

    check_outputs(args)
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
    check_device(config.device)
    try:
        engine = Engine.from_path(model_path, config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"skinscan predict: cannot load the model: {exc}", file=sys.stderr)
        return 2
    heatmap_dir = Path(args.heatmaps) if args.heatmaps else None
    bases = heatmap_base(images, args.inputs, heatmap_dir) if heatmap_dir else {}
    columns = (*COLUMNS, *HEATMAP_COLUMNS) if heatmap_dir else COLUMNS

    def prepare(path: Path) -> Prepared | str:
        try:
            return engine.prepare(path.read_bytes())
        except ImageDecodeError as exc:
            return f"{exc.code}: {exc.message}"
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc.__class__.__name__}"

    def write_heatmaps(path: Path, pred: Any) -> dict[str, str]:
        base = bases[path]
        base.parent.mkdir(parents=True, exist_ok=True)
        files = {kind: Path(f"{base}.{kind}.png") for kind in HEATMAP_COLUMNS}
        files["heatmap"].write_bytes(pred.heatmap_png())
        files["overlay"].write_bytes(pred.overlay_png())
        return {kind: str(file) for kind, file in files.items()}

    errors = 0
    with csv_output(args.csv) as out:
        writer = csv.DictWriter(out, fieldnames=columns)
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
                            row.update(write_heatmaps(path, pred))
                    writer.writerow(row)
                bar.update(len(chunk))
        bar.close()
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m skinscan.commands.predict``), errors as in skinscan."""
    from skinscan.cli import main as skinscan

    return skinscan(["predict", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
