"""Soft training targets from teacher models (knowledge distillation, "born-again" networks).

A network trained from scratch on 7,000 images learns little from a one-hot label about how
alike two diagnoses look; a trained model's probabilities carry that (a naevus that looks
half like a melanoma). The student is trained on a mix of both:
``(1 - weight) * one_hot(label) + weight * p_teacher``. With ``F.cross_entropy``'s probability
targets this is the usual distillation loss at temperature 1, up to a constant.

Several teachers act as an ensemble, ``p_teacher`` being the mean of their probabilities: an
ensemble usually scores better than each of its members, so it has more to teach than one
model at the student's own level. Each teacher scores each training image once, plain and in
eval mode (augmentation does not change a lesion's diagnosis, so one target per image serves
every augmented copy). Every teacher must come from the same lesion-grouped split, or its
targets would carry what it learnt from the student's validation images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from skinscan_engine.model import CLASSES
from skinscan_engine.model_card import load_model, resolve_paths

from .config import TrainConfig
from .run_data import Data
from .validation import predict_logits


def check_teachers(cfg: TrainConfig) -> None:
    """Fail at once, before the slow data preparation, on a missing teacher or a bad weight."""
    if not cfg.teachers:
        return
    for path in cfg.teachers:
        resolve_paths(Path(path))
    if not 0.0 <= cfg.distill_weight <= 1.0:
        raise ValueError(f"--distill-weight must be in [0, 1], got {cfg.distill_weight}")


def training_targets(cfg: TrainConfig, data: Data, device: torch.device, bf16: bool) -> np.ndarray:
    """What the network is fitted to: class indices, or with teachers, mixed distributions.

    Several teachers act as an ensemble: the mean of their probabilities is mixed in. Only the
    training part's rows are ever drawn; the others keep their one-hot labels.
    """
    if not cfg.teachers:
        return data.labels
    train_idx = data.index["train"]
    images = data.images[train_idx]  # one copy of the training images for every teacher
    teacher = np.mean(
        [
            teacher_probabilities(Path(p), images, cfg.split_seed, device, bf16)
            for p in cfg.teachers
        ],
        axis=0,
    )
    targets = np.eye(len(CLASSES), dtype=np.float32)[data.labels]
    targets[train_idx] = mixed_targets(data.labels[train_idx], teacher, cfg.distill_weight)
    return targets


def teacher_probabilities(
    path: Path,
    images: np.ndarray,
    split_seed: int,
    device: torch.device,
    bf16: bool,
) -> np.ndarray:
    """The shipped model at ``path``'s class probabilities for uint8 ``images`` (N x 7)."""
    loaded = load_model(path, device)  # leaves the student's random state alone
    card, geometry = loaded.card, loaded.card.geometry
    teacher_seed = card.training.get("split_seed")
    if teacher_seed != split_seed:
        raise ValueError(
            f"--teacher {path} was trained on the split of seed {teacher_seed}, this run uses "
            f"seed {split_seed}: its targets would leak validation images"
        )
    height, width = images.shape[1:3]
    if (geometry.width, geometry.height) != (width, height):
        raise ValueError(
            f"--teacher {path} takes {geometry.width}x{geometry.height} input, "
            f"this run decodes {width}x{height}"
        )
    network = loaded.network.to(memory_format=torch.channels_last)
    logits = predict_logits(network, images, geometry, device, bf16, progress="teacher")
    return logits.softmax(1).numpy().astype(np.float32)


def mixed_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """Per-image target distributions: one-hot labels mixed with the teacher's probabilities."""
    one_hot = np.eye(len(CLASSES), dtype=np.float32)[labels]
    return (1.0 - weight) * one_hot + weight * teacher
