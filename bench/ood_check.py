"""The "unknown" gate on photos that are not skin lesions, and on HAM10000 validation images.

Non-skin images, all read from installed packages (nothing is downloaded): every photo
bundled inside scikit-image's wheel (``skimage.data``), matplotlib's and scikit-learn's sample
photos, synthetic images (noise, flat colours, a gradient, text, screenshot-like UI, a
checkerboard), random close-up crops of the photos, and 50 small grey faces (LFW subset in
scikit-image). In-distribution set: validation images of the training split (``--split``,
default: the split rebuilt from seed 0, as the shipped model's).

Prints the rejection rate of each group (the aim: non-skin images rejected, at most 5% of
validation images). Meaningful with the trained model only.
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
    """The core non-skin set: scikit-image's photos and the synthetic images."""
    return {**skimage_photos(), **synthetic_images()}


def more_photos() -> dict[str, bytes]:
    """Photos bundled inside matplotlib's and scikit-learn's wheels (a portrait, a temple, a
    flower): more of what people might photograph instead of a lesion."""
    import matplotlib
    import sklearn

    paths = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]
    paths += sorted((Path(sklearn.__file__).parent / "datasets" / "images").glob("*.jpg"))
    return {f"{p.parent.parent.name}/{p.stem}": p.read_bytes() for p in paths if p.is_file()}


def photo_crops(photos: dict[str, bytes], per_photo: int = 4, seed: int = 0) -> dict[str, bytes]:
    """Random crops (40-75% of each side) of every photo: close-ups, as a phone would take."""
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    for name, data in photos.items():
        img = Image.open(io.BytesIO(data)).convert("RGB")
        w, h = img.size
        for k in range(per_photo):
            f = rng.uniform(0.4, 0.75)
            cw, ch = int(w * f), int(h * f)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            out[f"{name}/crop{k}"] = _png(img.crop((x, y, x + cw, y + ch)))
    return out


def faces(step: int = 4) -> dict[str, bytes]:
    """Every ``step``-th of the 200 small grey faces (LFW) bundled with scikit-image."""
    import skimage.data

    arr = np.load(Path(skimage.data.data_dir) / "lfw_subset.npy")
    scale = 255.0 if arr.max() <= 1.0 else 1.0
    return {f"lfw/{i}": _png((arr[i] * scale).astype(np.uint8)) for i in range(0, len(arr), step)}


def non_skin_groups() -> dict[str, dict[str, bytes]]:
    """Every non-skin image the check scores, by group."""
    photos = {**skimage_photos(), **more_photos()}  # read once, cropped below
    return {
        "photos and synthetic": {**photos, **synthetic_images()},
        "crops of the photos": photo_crops(photos),
        "faces": faces(),
    }


def _verdict(res: object) -> str:
    return res.result["verdict"] if hasattr(res, "result") else f"error ({res})"


def main() -> None:
    from _common import machine, model_path, shared_data, validation_ids

    from skinscan_engine.engine import Engine, EngineConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--val-images", type=int, default=500)
    parser.add_argument("--split", help="split.json (default: the split rebuilt from seed 0)")
    parser.add_argument("--verbose", action="store_true", help="one line per non-skin image")
    parser.add_argument("--json", help="also write the figures (and the misses) to this file")
    args = parser.parse_args()

    engine = Engine.from_path(model_path(args.model), EngineConfig())
    print(f"machine: {machine()}")
    print(f"model: {engine.version}; gate: {engine.ood_method}, threshold {engine.ood_threshold}")
    if engine.ood_threshold is None:
        print("note: this model card has no 'unknown' gate threshold; nothing can be rejected")

    groups: dict[str, dict[str, int]] = {}
    missed: list[str] = []
    for group, images in non_skin_groups().items():
        results = dict(zip(images, engine.predict_safe(list(images.values())), strict=True))
        rejected = 0
        for name, res in results.items():
            verdict = _verdict(res)
            rejected += verdict == "unknown"
            if verdict != "unknown":
                missed.append(name)
            if args.verbose:
                score = res.result["ood_score"] if hasattr(res, "result") else float("nan")
                print(f"  {name:32s} {verdict:9s} ood_score={score:.3f}")
        groups[group] = {"rejected": rejected, "total": len(results)}
        print(
            f"non-skin, {group}: rejected {rejected}/{len(results)} ({rejected / len(results):.1%})"
        )
    folder = shared_data() / "ham10000" / "images"
    val = [
        folder / f"{i}.jpg"
        for i in validation_ids(Path(args.split) if args.split else None, args.val_images)
    ]
    val_results = engine.predict([p.read_bytes() for p in val])
    val_rejected = sum(p.result["verdict"] == "unknown" for p in val_results)
    rejected = sum(g["rejected"] for g in groups.values())
    total = sum(g["total"] for g in groups.values())
    print(f"non-skin images rejected: {rejected}/{total} ({rejected / total:.1%})")
    print(
        f"HAM10000 validation images rejected: {val_rejected}/{len(val)} "
        f"({val_rejected / len(val):.1%})"
    )
    print(
        f"non_skin_reject_rate={rejected / total:.3f} "
        f"in_dist_reject_rate={val_rejected / len(val):.3f}"
    )
    if args.json:
        parts = "; ".join(f"{g}: {v['rejected']} of {v['total']}" for g, v in groups.items())
        summary = (
            f'{rejected} of {total} non-skin images are answered "unknown" ({parts}; photos '
            f"bundled with scikit-image, matplotlib and scikit-learn, synthetic noise, flat "
            f"colours, text and screenshots, random crops of the photos, small grey faces), "
            f"against {val_rejected} of {len(val)} HAM10000 validation images "
            f"({val_rejected / len(val):.1%}). Missed: {', '.join(missed) or 'none'}."
        )
        Path(args.json).write_text(
            json.dumps(
                {
                    "non_skin_rejected": rejected,
                    "non_skin_total": total,
                    "groups": groups,
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
