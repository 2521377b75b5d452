"""A run's data in memory: the split, the decoded images, and the batches drawn from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skinscan_engine.model import CLASSES
from skinscan_engine.preprocessing import (
    Geometry,
    estimate_illuminant,
    relight,
    standardize,
    to_batch,
)

from .augment import AugmentConfig, augment
from .config import TrainConfig
from .dataset import Record, load_images, read_metadata
from .mixup import mix_batch
from .split import grouped_split, load_run_split, save_split


@dataclass
class Data:
    records: list[Record]
    images: np.ndarray
    labels: np.ndarray
    index: dict[str, np.ndarray]  # part -> row indices into images


def prepare_data(cfg: TrainConfig, run_dir: Path) -> Data:
    """Read metadata, make (or reuse) the grouped split, decode images once into memory."""
    records = read_metadata(Path(cfg.data))
    if cfg.limit:
        records = records[: cfg.limit]
    split_file = run_dir / "split.json"
    if split_file.is_file():
        split = load_run_split(split_file, cfg.split_seed, records)
    else:
        split = grouped_split(records, seed=cfg.split_seed)
        save_split(split, split_file, cfg.split_seed)
    geometry = Geometry(width=cfg.width, height=cfg.height)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else run_dir / "cache"
    images = load_images(Path(cfg.data), records, geometry, cache)
    row = {r.image_id: i for i, r in enumerate(records)}
    index = {p: np.array([row[i] for i in ids], dtype=np.int64) for p, ids in split.items()}
    labels = np.array([r.label for r in records], dtype=np.int64)
    return Data(records, images, labels, index)


def mean_illuminant(images: np.ndarray, chunk: int = 256) -> tuple[float, float, float]:
    """Mean shades-of-grey light of uint8 HxWx3 images: the light colour constancy aims at."""
    total = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = to_batch(images[start : start + chunk]).float().div_(255.0)
        total += estimate_illuminant(x).sum(0).double()
    return tuple(round(v, 4) for v in (total / len(images)).tolist())  # type: ignore[return-value]


def channel_stats(
    images: np.ndarray, illuminant: tuple[float, float, float] | None = None, chunk: int = 256
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0, 1] (the model's normalisation), after
    re-lighting them to ``illuminant`` if given.

    Summed a chunk of images at a time: the whole training part in float64 at once would take
    about 15 GB at 200x150.
    """
    total, squares, n = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
    for start in range(0, len(images), chunk):
        x = to_batch(images[start : start + chunk]).double().div_(255.0)
        if illuminant is not None:
            x = relight(x, illuminant)
        x = x.transpose(0, 1).reshape(3, -1)
        total += x.sum(1)
        squares += x.square().sum(1)
        n += x.shape[1]
    mean = (total / n).numpy()
    std = np.sqrt(np.maximum((squares / n).numpy() - mean**2, 0.0))
    return mean.round(4).tolist(), std.round(4).tolist()


def sampling_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-image weights so that rare diagnoses are drawn more often (power 1 = fully balanced)."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    w = np.where(counts > 0, counts, 1.0) ** -power
    weights = w[labels]
    return weights / weights.sum()


def image_pool(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """All decoded images as one N x 3 x H x W uint8 tensor on the training device.

    On a GPU the whole set (under 1 GB at 200x150) moves there once, and batches are gathered
    and augmented there: on the CPU, augmenting one batch of 32 at 200x150 takes about 50 ms
    (two cores), as long as a whole GPU training step. On the CPU this is a view, not a copy.
    """
    return to_batch(images).to(device)


def training_batches(
    pool: torch.Tensor,
    targets: np.ndarray,
    train_idx: np.ndarray,
    weights: torch.Tensor,
    steps: int,
    batch_size: int,
    augment_cfg: AugmentConfig,
    geometry: Geometry,
    gen: torch.Generator,
    mixup: float = 0.0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of augmented, standardised batches, drawn with replacement by ``weights``.

    ``targets`` holds a class index per image, or a probability per class and image (soft
    targets, see :mod:`.distill`); batches carry the rows of it their images come from.
    Every random draw comes from ``gen`` (on the CPU), in the same order on any device, so a
    seed gives the same epoch wherever it runs. With ``mixup`` (Beta's alpha) the images of
    each batch are blended in pairs and the targets become per-class probabilities (see
    :mod:`.mixup`).
    """
    draws = torch.multinomial(weights, steps * batch_size, True, generator=gen)
    for step in range(steps):
        rows = train_idx[draws[step * batch_size : (step + 1) * batch_size].numpy()]
        # Copies to the device need not wait for it (see augment).
        picked = torch.from_numpy(rows).to(pool.device, non_blocking=True)
        x = augment(pool[picked].float().div_(255.0), augment_cfg, gen)
        y = torch.from_numpy(targets[rows]).to(pool.device, non_blocking=True)
        x = standardize(x, geometry)
        if mixup:
            x, y = mix_batch(x, y, mixup, len(CLASSES), gen)
        yield x, y
