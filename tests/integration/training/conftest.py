"""Fixtures for the training and evaluation tests: a tiny HAM10000-shaped dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinscan_engine.model import CLASSES


def make_tiny_ham(root: Path, lesions_per_class: int = 8, seed: int = 0) -> Path:
    """Write ``root/HAM10000_metadata.csv`` and ``root/images/*.jpg``: coloured blobs per class.

    Each diagnosis gets its own blob colour so that a model can learn something in one epoch;
    some lesions get two images, as in the real set.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    n = 0
    for k, dx in enumerate(CLASSES):
        colour = np.array([40 + 30 * k, 200 - 25 * k, 80 + 20 * (k % 3)], dtype=np.float64)
        for lesion in range(lesions_per_class):
            lesion_id = f"HAM_{k:02d}{lesion:04d}"
            for _ in range(1 + (lesion % 3 == 0)):
                yy, xx = np.mgrid[0:150, 0:200]
                cy, cx = rng.uniform(50, 100), rng.uniform(70, 130)
                blob = np.exp(-(((yy - cy) / 30) ** 2 + ((xx - cx) / 40) ** 2))[..., None]
                skin = np.array([220, 170, 150], dtype=np.float64)
                img = skin * (1 - blob) + colour * blob + rng.normal(0, 8, (150, 200, 3))
                image_id = f"ISIC_{n:07d}"
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                    root / "images" / f"{image_id}.jpg", quality=90
                )
                rows.append(
                    {
                        "lesion_id": lesion_id,
                        "image_id": image_id,
                        "dx": dx,
                        "dx_type": "histo",
                        "age": "50.0",
                        "sex": "male",
                        "localization": "back",
                    }
                )
                n += 1
    with (root / "HAM10000_metadata.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def tiny_ham(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated HAM10000-shaped folder with every diagnosis (about 80 small images)."""
    return make_tiny_ham(tmp_path_factory.mktemp("tiny_ham"))
