"""A training run's settings (saved in ``config.json`` and in every checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .augment import AugmentConfig


@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    optimizer: str = "adamw"  # or "sgd" (Nesterov momentum); see optim.make_optimizer
    label_smoothing: float = 0.1
    width: int = 128
    height: int = 96
    samples_per_epoch: int = 0  # 0 = size of the training part
    balance_power: float = 0.5  # sampling weight = class frequency ** -balance_power
    seed: int = 0  # initialisation, batches and augmentation
    # The lesion-grouped split's seed, apart from ``seed`` so that a run repeated with another
    # seed is compared on the same validation images (every shipped model uses split 0).
    split_seed: int = 0
    device: str = "auto"
    bf16: bool = True
    cache_dir: str = ""
    limit: int = 0  # use only the first N images (tests, smoke runs)
    init: str = ""  # a shipped model whose weights start the run (warm start), or "" for scratch
    # Seconds the training may take, data preparation included, calibration and export not
    # (0 = no limit). After its first and second epochs a fresh run sets ``epochs`` (at most
    # the configured number) to what fits, and its learning-rate schedule with it, so that
    # the schedule still ends where it should.
    time_budget: float = 0.0
    # Export the mean of the last N epochs' weights instead of the best epoch (0 = best epoch).
    average_last: int = 0
    # Distillation: shipped models (same split) whose mean probabilities are mixed into the
    # targets with this weight (none = one-hot labels only).
    teachers: list[str] = field(default_factory=list)
    distill_weight: float = 0.5
    # Weight of a malignant-vs-benign term added to the seven-class loss (0 = none).
    binary_weight: float = 0.0
    # Re-light every image to the training part's mean light (shades-of-grey colour constancy)
    # before the network sees it, in training and in serving.
    colour_constancy: bool = False
    # Mixup's Beta(alpha, alpha): blend training images in pairs, targets alike (0 = off).
    mixup: float = 0.0
    augment: dict[str, Any] = field(default_factory=lambda: asdict(AugmentConfig()))

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> TrainConfig:
        """The configuration stored in a checkpoint, including those of older versions."""
        settings = dict(saved)
        # Before ensembles of teachers (2026-12-04) a run had at most one, "" for none.
        if "teacher" in settings:
            legacy = settings.pop("teacher")
            settings.setdefault("teachers", [legacy] if legacy else [])
        # Before --split-seed (2026-12-06) one seed made the split as well.
        settings.setdefault("split_seed", settings.get("seed", 0))
        return cls(**settings)
