"""A split file handed to evaluate: malformed ones and other seeds' are refused, clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skinscan_training.dataset import Record
from skinscan_training.split import (
    SplitMismatchError,
    grouped_split,
    load_split,
    model_split,
    save_split,
)


def _records() -> list[Record]:
    return [
        Record(
            image_id=f"ISIC_{i:05d}", lesion_id=f"HAM_{i // 2:05d}", dx=("nv", "mel")[i // 2 % 2]
        )
        for i in range(200)
    ]


def test_a_split_of_another_seed_is_refused_unless_allowed(tmp_path: Path) -> None:
    records = _records()
    other = grouped_split(records, seed=1)
    save_split(other, tmp_path / "split.json", seed=1)
    with pytest.raises(SplitMismatchError, match=r"made with seed 1.*split_seed") as info:
        model_split(records, tmp_path / "split.json", seed=0)
    assert "--allow-other-split" in str(info.value)
    assert model_split(records, tmp_path / "split.json", seed=0, allow_other=True) == other
    assert model_split(records, tmp_path / "split.json", seed=1) == other


def test_a_split_without_its_seed_cannot_be_checked(tmp_path: Path) -> None:
    split = grouped_split(_records(), seed=0)
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(SplitMismatchError, match="does not say its seed"):
        model_split(_records(), tmp_path / "split.json", seed=0)


def test_the_models_own_split_and_the_rebuilt_one_pass(tmp_path: Path) -> None:
    records = _records()
    save_split(grouped_split(records, seed=0), tmp_path / "split.json", seed=0)
    assert model_split(records, tmp_path / "split.json", 0) == model_split(records, None, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"seed": 0, "training": [], "validation": []}', "lacks the part train, val, test"),
        ('{"seed": 0, "train": [], "val": []}', "lacks the part test"),
        ('{"seed": 0, "train": [], "val": [], "test": "ISIC_1"}', "must be a list"),
        ("[1, 2]", "expected a JSON object"),
        ("{bad", "not valid JSON"),
    ],
)
def test_a_malformed_split_file_says_what_is_wrong(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "split.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_split(tmp_path / "split.json")
    with pytest.raises(ValueError, match=message):
        model_split(_records(), tmp_path / "split.json", 0)
