"""What a run folder holds decides what a run may do there: its split, its settings."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from skinscan_engine.preprocessing import Geometry
from skinscan_training import run_data
from skinscan_training.checkpoints import resume_point
from skinscan_training.config import TrainConfig
from skinscan_training.dataset import Record


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip decoding the images: these tests are about the split only."""

    def blank(data: Path, records: list[Record], geometry: Geometry, cache: Path) -> np.ndarray:
        return np.zeros((len(records), 1, 1, 3), np.uint8)

    monkeypatch.setattr(run_data, "load_images", blank)


def test_a_run_folder_s_split_of_another_seed_is_refused(
    tiny_ham: Path, tmp_path: Path, no_decoding: None
) -> None:
    run_data.prepare_data(TrainConfig(data=str(tiny_ham), out=str(tmp_path)), tmp_path)
    assert json.loads((tmp_path / "split.json").read_text())["seed"] == 0
    # Reused, it would train the model on images the card's seed puts in the test part.
    other = TrainConfig(data=str(tiny_ham), out=str(tmp_path), split_seed=1)
    with pytest.raises(ValueError, match="made with seed 0, but this run's split seed is 1"):
        run_data.prepare_data(other, tmp_path)


def test_a_run_folder_s_split_of_other_data_is_refused_not_a_key_error(
    tiny_ham: Path, tmp_path: Path, no_decoding: None
) -> None:
    run_data.prepare_data(TrainConfig(data=str(tiny_ham), out=str(tmp_path)), tmp_path)
    limited = TrainConfig(data=str(tiny_ham), out=str(tmp_path), limit=20)
    with pytest.raises(ValueError, match=r"not in the run's data .* another --limit"):
        run_data.prepare_data(limited, tmp_path)


def test_only_a_folder_without_a_run_takes_a_new_one(tmp_path: Path) -> None:
    from skinscan_training.checkpoints import check_new_run_dir

    check_new_run_dir(tmp_path / "absent")
    (tmp_path / "cache").mkdir()  # a decoded-image cache is not a run
    check_new_run_dir(tmp_path)
    for name in ("config.json", "split.json", "log.jsonl", "last.pt"):
        (tmp_path / name).write_text("{}")
        with pytest.raises(ValueError, match=f"already holds a run \\(.*{name}.*--resume"):
            check_new_run_dir(tmp_path)
        (tmp_path / name).unlink()


def _saved_run(tmp_path: Path, **settings: object) -> Path:
    """A ``last.pt`` of a run made elsewhere, three epochs in."""
    saved = TrainConfig(data="/old/place/ham10000", out="/old/run", epochs=10, **settings)
    torch.save({"config": asdict(saved), "epoch": 3}, tmp_path / "last.pt")
    return tmp_path / "last.pt"


def test_resume_takes_the_data_s_and_the_cache_s_new_places(tmp_path: Path) -> None:
    last = _saved_run(tmp_path, cache_dir="/old/cache", lr=1e-3, width=200, height=150)
    asked = TrainConfig(data="/new/ham10000", out=str(tmp_path), epochs=0, cache_dir="/new/c")
    cfg, _ = resume_point(asked, last)
    assert (cfg.data, cfg.out, cfg.cache_dir) == ("/new/ham10000", str(tmp_path), "/new/c")
    # Settings left at their defaults are the run's own; so is its length without --epochs.
    assert (cfg.lr, cfg.width, cfg.height, cfg.epochs) == (1e-3, 200, 150, 10)
    # Asking for the run's own values is no change.
    again = TrainConfig(data="/new", out=str(tmp_path), epochs=12, lr=1e-3, width=200, height=150)
    assert resume_point(again, last)[0].epochs == 12


@pytest.mark.parametrize(
    ("setting", "flag"),
    [
        ({"lr": 1e-4}, "--lr"),
        ({"bf16": False}, "--no-bf16"),
        ({"seed": 3}, "--seed"),
        ({"split_seed": 1}, "--split-seed"),
        ({"batch_size": 64}, "--batch-size"),
        ({"width": 64}, "--width"),
        ({"limit": 300}, "--limit"),
        ({"time_budget": 600.0}, "--time-budget"),
        ({"teachers": ["models/x"]}, "--teacher"),
    ],
)
def test_resume_refuses_a_setting_the_run_was_not_trained_with(
    tmp_path: Path, setting: dict[str, object], flag: str
) -> None:
    last = _saved_run(tmp_path)
    asked = TrainConfig(data="/new", out=str(tmp_path), epochs=0, **setting)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"other settings than asked: {flag} \\(run: "):
        resume_point(asked, last)
