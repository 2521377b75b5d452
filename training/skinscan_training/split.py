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
from typing import Any

from .dataset import IMAGE_DIR, METADATA_FILE, Record, read_metadata

PARTS = ("train", "val", "test")


class SplitMismatchError(ValueError):
    """A split file that is not (provably) the split the model was trained on."""


def read_ham(data_dir: Path) -> list[Record]:
    """The metadata of a HAM10000 folder, after checking its layout (so that a wrong --data
    fails before any output is written, not halfway through decoding)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data {data_dir}: no such folder")
    if not (data_dir / IMAGE_DIR).is_dir():
        raise FileNotFoundError(
            f"--data {data_dir} has no {IMAGE_DIR}/ folder: it must hold {METADATA_FILE} and "
            f"{IMAGE_DIR}/*.jpg"
        )
    try:
        return read_metadata(data_dir)
    except KeyError as exc:
        raise ValueError(f"{data_dir / METADATA_FILE} lacks the column {exc.args[0]!r}") from None


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


def _read_split_file(path: Path) -> dict[str, Any]:
    """A split file's JSON object, checked to list every part (ValueError saying what's wrong)."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"split file {path} is not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"split file {path}: expected a JSON object with {', '.join(PARTS)}")
    missing = [p for p in PARTS if p not in data]
    if missing:
        raise ValueError(
            f"split file {path} lacks the part {', '.join(missing)}: use the split.json of a "
            f"training run (it lists the image ids of {', '.join(PARTS)})"
        )
    for part in PARTS:
        ids = data[part]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"split file {path}: part {part!r} must be a list of image ids")
    return data


def load_split(path: Path) -> dict[str, list[str]]:
    """The parts of a split file (ValueError if one is missing or malformed)."""
    data = _read_split_file(path)
    return {p: list(data[p]) for p in PARTS}


def load_run_split(path: Path, seed: int, records: list[Record]) -> dict[str, list[str]]:
    """A run folder's own ``split.json``, checked to be the split of ``seed`` over ``records``.

    A run reuses its split when resumed or exported; one made with another seed would train
    the model on images its card's seed puts in the test part, and one made for other data
    (or another ``--limit``) names images this run does not have (ValueError for both).
    """
    data = _read_split_file(path)
    file_seed = data.get("seed")
    if file_seed != seed or not isinstance(file_seed, int):
        said = "does not say its seed" if file_seed is None else f"was made with seed {file_seed!r}"
        raise ValueError(
            f"split file {path} {said}, but this run's split seed is {seed}: the model would "
            "train on another split than its card names. Resume the run with its own settings, "
            "or start the new one in another --out"
        )
    known = {r.image_id for r in records}
    unknown = [i for p in PARTS for i in data[p] if i not in known]
    if unknown:
        raise ValueError(
            f"split file {path} lists {len(unknown)} image(s) not in the run's data (first: "
            f"{unknown[0]}): it was made for other data or another --limit. Resume the run with "
            "its own --data and --limit, or start the new one in another --out"
        )
    return {p: list(data[p]) for p in PARTS}


def check_split_seed(path: Path, file_seed: object, card_seed: int) -> None:
    """Refuse a split file made with another seed than the model's: its test part would hold
    images the model was trained on, and every figure measured on it would be inflated."""
    if file_seed == card_seed and isinstance(file_seed, int):
        return
    said = "does not say its seed" if file_seed is None else f"was made with seed {file_seed!r}"
    raise SplitMismatchError(
        f"split file {path} {said}, but the model was trained on the split of seed "
        f"{card_seed} (split_seed on its card): its parts may mix the model's training images "
        "into the ones scored. Give the training run's own split.json or leave out --split "
        "(the split is rebuilt from the card); `skinscan evaluate --allow-other-split` scores "
        "it anyway"
    )


def model_split(
    records: list[Record],
    split_file: Path | None,
    seed: int = 0,
    *,
    allow_other: bool = False,
) -> dict[str, list[str]]:
    """The split a model was trained on: ``split_file`` if given, else rebuilt from ``seed``
    (the split is a pure function of the metadata and the seed on the model card).

    A file made with another seed than ``seed`` is refused (SplitMismatchError) unless
    ``allow_other``.
    """
    if split_file is None:
        return grouped_split(records, seed=seed)
    data = _read_split_file(split_file)
    if not allow_other:
        check_split_seed(split_file, data.get("seed"), seed)
    return {p: list(data[p]) for p in PARTS}
