"""HAM10000 on disk -> uint8 arrays in memory, decoded once and cached.

The whole set at the model's input size is a few hundred MB, so the training loop never touches
JPEG decoding after the first run: the cache sits next to the run (or in ``--cache-dir``).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from skinscan_engine.model import CLASSES
from skinscan_engine.preprocessing import Geometry, decode_image, fit_to_geometry

METADATA_FILE = "HAM10000_metadata.csv"
IMAGE_DIR = "images"


@dataclass(frozen=True)
class Record:
    """One row of the HAM10000 metadata."""

    image_id: str
    lesion_id: str
    dx: str

    @property
    def label(self) -> int:
        return CLASSES.index(self.dx)


def read_metadata(data_dir: Path) -> list[Record]:
    """Rows of ``HAM10000_metadata.csv``, sorted by image id (a stable order for caching)."""
    path = Path(data_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --data must point at the HAM10000 folder")
    with path.open(newline="") as fh:
        rows = [Record(r["image_id"], r["lesion_id"], r["dx"]) for r in csv.DictReader(fh)]
    unknown = {r.dx for r in rows} - set(CLASSES)
    if unknown:
        raise ValueError(f"unknown diagnoses in {path}: {sorted(unknown)}")
    return sorted(rows, key=lambda r: r.image_id)


def image_path(data_dir: Path, image_id: str) -> Path:
    return Path(data_dir) / IMAGE_DIR / f"{image_id}.jpg"


def load_images(
    data_dir: Path, records: list[Record], geometry: Geometry, cache_dir: Path | None = None
) -> np.ndarray:
    """Decode every record's image fitted to ``geometry``: N x H x W x 3 uint8 (cached on disk)."""
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(
            (
                "|".join(r.image_id for r in records) + f"|{geometry.width}x{geometry.height}"
            ).encode()
        ).hexdigest()[:16]
        cache_file = Path(cache_dir) / f"images-{geometry.width}x{geometry.height}-{key}.npy"
        if cache_file.is_file():
            return np.load(cache_file, mmap_mode=None)
    out = np.empty((len(records), geometry.height, geometry.width, 3), dtype=np.uint8)
    for i, rec in enumerate(tqdm(records, desc="decoding images", unit="img")):
        out[i] = fit_to_geometry(
            decode_image(image_path(data_dir, rec.image_id).read_bytes()), geometry
        )
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(cache_file)
    return out
