"""The "unknown" gate on photos that are not skin lesions, and on HAM10000 validation images.

Non-skin set: every photo bundled inside scikit-image's wheel (``skimage.data``; read from the
installed package, nothing is downloaded) plus synthetic images: noise, flat colours, a
gradient, text, screenshot-like UI, a checkerboard. In-distribution set: validation images
of the training split (``--split``, default ``runs/r128/split.json``; else the last images).

Prints the rejection rate of each set (the target: most non-skin images rejected, at most
5% of validation images). Meaningful with the trained model only.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SUFFIXES = (".png", ".jpg", ".gif")


def skimage_photos() -> dict[str, bytes]:
    """The sample images shipped inside scikit-image (file bytes, by name)."""
    import skimage.data

    folder = Path(skimage.data.data_dir)
    return {
        f"skimage/{p.stem}": p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    }


def _png(arr: np.ndarray | Image.Image) -> bytes:
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def synthetic_images(seed: int = 0, width: int = 400, height: int = 300) -> dict[str, bytes]:
    """Noise, flat colours, gradient, text, screenshot-like, checkerboard (PNG bytes)."""
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    out["synthetic/uniform-noise"] = _png(rng.integers(0, 256, (height, width, 3), np.uint8))
    gauss = np.clip(rng.normal(128, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    out["synthetic/gaussian-noise"] = _png(gauss)
    for name, rgb in {
        "black": (0, 0, 0),
        "white": (255, 255, 255),
        "red": (200, 30, 30),
        "skin-beige": (224, 172, 140),
        "grey": (128, 128, 128),
    }.items():
        out[f"synthetic/flat-{name}"] = _png(np.full((height, width, 3), rgb, np.uint8))
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    out["synthetic/gradient"] = _png(np.stack([np.tile(ramp, (height, 1))] * 3, axis=-1))
    text = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(text)
    for i in range(12):
        draw.text(
            (10, 10 + 23 * i), "The quick brown fox jumps over the lazy dog " * 2, fill="black"
        )
    out["synthetic/text"] = _png(text)
    shot = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, width, 28), fill=(40, 60, 120))
    draw.text((8, 8), "File  Edit  View  Help", fill="white")
    draw.rectangle((0, 28, 90, height), fill=(225, 228, 232))
    for i in range(8):
        draw.text((8, 40 + 25 * i), f"Item {i}", fill=(30, 30, 30))
        draw.rectangle((110, 40 + 30 * i, width - 20, 60 + 30 * i), outline=(180, 180, 180))
    draw.rectangle((width - 110, height - 40, width - 20, height - 15), fill=(30, 120, 220))
    out["synthetic/screenshot"] = _png(shot)
    squares = (np.indices((height, width)) // 25).sum(axis=0) % 2
    out["synthetic/checkerboard"] = _png((squares * 255).astype(np.uint8))
    return out


def non_skin_images() -> dict[str, bytes]:
    return {**skimage_photos(), **synthetic_images()}


def validation_paths(split: Path, images: Path, n: int) -> list[Path]:
    if split.is_file():
        ids = json.loads(split.read_text())["val"][:n]
        return [images / f"{i}.jpg" for i in ids]
    return sorted(images.glob("*.jpg"))[-n:]


def main() -> None:
    from _common import REPO, machine, model_path, shared_data

    from skinscan_engine.engine import Engine, EngineConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--val-images", type=int, default=500)
    parser.add_argument("--split", default=str(REPO / "runs" / "r128" / "split.json"))
    parser.add_argument("--verbose", action="store_true", help="one line per non-skin image")
    parser.add_argument("--json", help="also write the figures (and the misses) to this file")
    args = parser.parse_args()

    engine = Engine.from_path(model_path(args.model), EngineConfig())
    print(f"machine: {machine()}")
    print(f"model: {engine.version}; gate: {engine.ood_method}, threshold {engine.ood_threshold}")
    if engine.ood_threshold is None:
        print("note: this model card has no 'unknown' gate threshold; nothing can be rejected")

    others = non_skin_images()
    results = dict(zip(others, engine.predict_safe(list(others.values())), strict=True))
    rejected = 0
    for name, res in results.items():
        verdict = res.result["verdict"] if hasattr(res, "result") else f"error ({res})"
        rejected += verdict == "unknown"
        if args.verbose:
            score = res.result["ood_score"] if hasattr(res, "result") else float("nan")
            print(f"  {name:32s} {verdict:9s} ood_score={score:.3f}")
    val = validation_paths(Path(args.split), shared_data() / "ham10000" / "images", args.val_images)
    val_results = engine.predict([p.read_bytes() for p in val])
    val_rejected = sum(p.result["verdict"] == "unknown" for p in val_results)
    print(f"non-skin images rejected: {rejected}/{len(results)} ({rejected / len(results):.1%})")
    print(
        f"HAM10000 validation images rejected: {val_rejected}/{len(val)} "
        f"({val_rejected / len(val):.1%})"
    )
    print(
        f"non_skin_reject_rate={rejected / len(results):.3f} "
        f"in_dist_reject_rate={val_rejected / len(val):.3f}"
    )
    if args.json:
        missed = [
            n
            for n, r in results.items()
            if not hasattr(r, "result") or r.result["verdict"] != "unknown"
        ]
        summary = (
            f"{rejected} of {len(results)} non-skin images (scikit-image's bundled photos and "
            f'synthetic noise, flat colours, text, screenshots) are answered "unknown", '
            f"against {val_rejected} of {len(val)} HAM10000 validation images "
            f"({val_rejected / len(val):.1%}). Missed: {', '.join(missed) or 'none'}."
        )
        Path(args.json).write_text(
            json.dumps(
                {
                    "non_skin_rejected": rejected,
                    "non_skin_total": len(results),
                    "in_distribution_rejected": val_rejected,
                    "in_distribution_total": len(val),
                    "missed": missed,
                    "summary": summary,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
