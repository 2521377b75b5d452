"""Train / validation / test split grouped by lesion and stratified by diagnosis.

HAM10000 has several images of many lesions; a split by image puts the same lesion on both
sides and inflates every metric. Here whole lesions are assigned to one part, and each
diagnosis is spread over the parts in the requested proportions.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from .dataset import Record

PARTS = ("train", "val", "test")


def grouped_split(
    records: list[Record], fractions: tuple[float, float, float] = (0.70, 0.15, 0.15), seed: int = 0
) -> dict[str, list[str]]:
    """Map each part to its image ids; no lesion appears in two parts."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError("fractions must sum to 1")
    lesions: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        lesions[rec.lesion_id].append(rec)
    by_dx: dict[str, list[str]] = defaultdict(list)
    for lesion_id, recs in lesions.items():
        dxs = {r.dx for r in recs}
        if len(dxs) != 1:
            raise ValueError(f"lesion {lesion_id} has several diagnoses: {sorted(dxs)}")
        by_dx[recs[0].dx].append(lesion_id)
    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for dx in sorted(by_dx):
        ids = sorted(by_dx[dx])
        rng.shuffle(ids)
        # Fill parts by image count, not lesion count, so each part gets its share of images.
        total = sum(len(lesions[i]) for i in ids)
        targets = [f * total for f in fractions]
        filled = [0.0, 0.0, 0.0]
        for lesion_id in ids:
            deficits = [t - f for t, f in zip(targets, filled, strict=True)]
            part = max(range(3), key=lambda k: deficits[k])
            assignment[lesion_id] = PARTS[part]
            filled[part] += len(lesions[lesion_id])
    split: dict[str, list[str]] = {p: [] for p in PARTS}
    for rec in records:
        split[assignment[rec.lesion_id]].append(rec.image_id)
    return {p: sorted(ids) for p, ids in split.items()}


def save_split(split: dict[str, list[str]], path: Path, seed: int) -> None:
    Path(path).write_text(json.dumps({"seed": seed, "grouped_by": "lesion_id", **split}, indent=1))


def load_split(path: Path) -> dict[str, list[str]]:
    data = json.loads(Path(path).read_text())
    return {p: list(data[p]) for p in PARTS}


def model_split(
    records: list[Record], split_file: Path | None, seed: int = 0
) -> dict[str, list[str]]:
    """The split a model was trained on: ``split_file`` if given, else rebuilt from ``seed``
    (the split is a pure function of the metadata and the seed on the model card)."""
    return load_split(split_file) if split_file is not None else grouped_split(records, seed=seed)
