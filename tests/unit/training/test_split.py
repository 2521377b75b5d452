"""The lesion-grouped split: no lesion in two parts, every diagnosis spread, deterministic."""

from __future__ import annotations

import random
from collections import Counter

from skinscan_training.dataset import Record
from skinscan_training.split import PARTS, grouped_split, load_split, save_split


def _records(n_lesions: int = 600, seed: int = 1) -> list[Record]:
    rng = random.Random(seed)
    dxs = (
        ["nv"] * 60 + ["mel"] * 12 + ["bkl"] * 11 + ["bcc"] * 5 + ["akiec"] * 3 + ["vasc"] + ["df"]
    )
    out = []
    for i in range(n_lesions):
        dx = rng.choice(dxs)
        for j in range(rng.choice([1, 1, 1, 2, 3])):
            out.append(Record(image_id=f"ISIC_{i:05d}_{j}", lesion_id=f"HAM_{i:05d}", dx=dx))
    return out


def test_no_lesion_in_two_parts() -> None:
    records = _records()
    split = grouped_split(records, seed=0)
    lesion_of = {r.image_id: r.lesion_id for r in records}
    parts = {p: {lesion_of[i] for i in split[p]} for p in PARTS}
    assert not parts["train"] & parts["val"]
    assert not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]
    assert sum(len(split[p]) for p in PARTS) == len(records)


def test_every_diagnosis_in_roughly_the_asked_proportions() -> None:
    records = _records()
    split = grouped_split(records, seed=0)
    dx_of = {r.image_id: r.dx for r in records}
    total = Counter(r.dx for r in records)
    for dx in ("nv", "mel", "bkl"):
        share = Counter(dx_of[i] for i in split["train"])[dx] / total[dx]
        assert 0.6 < share < 0.8, (dx, share)
        assert Counter(dx_of[i] for i in split["test"])[dx] > 0


def test_split_is_deterministic_and_round_trips(tmp_path) -> None:
    records = _records()
    a, b = grouped_split(records, seed=3), grouped_split(records, seed=3)
    assert a == b
    assert grouped_split(records, seed=4) != a
    save_split(a, tmp_path / "split.json", seed=3)
    assert load_split(tmp_path / "split.json") == a


def test_a_checkpoint_from_before_split_seed_keeps_the_split_of_its_seed() -> None:
    from dataclasses import asdict

    from skinscan_training.config import TrainConfig

    current = asdict(TrainConfig(data="d", out="o", seed=3))
    old = {k: v for k, v in current.items() if k != "split_seed"}
    assert TrainConfig.from_saved(old).split_seed == 3
    assert TrainConfig.from_saved(current).split_seed == 0
