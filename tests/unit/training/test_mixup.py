"""Mixup blends images and their targets by the same weight, repeatably."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skinscan_engine.model import CLASSES
from skinscan_engine.preprocessing import Geometry
from skinscan_training.augment import AugmentConfig
from skinscan_training.mixup import as_probabilities, mix_batch
from skinscan_training.run_data import training_batches

K = len(CLASSES)


def class_images(labels: torch.Tensor) -> torch.Tensor:
    # Every pixel of image i holds its class index, so a blend's pixels are its targets' mean.
    return labels.float().view(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()


def test_images_and_targets_are_blended_by_the_same_weight() -> None:
    labels = torch.arange(K)
    x, y = mix_batch(class_images(labels), labels, 0.4, K, torch.Generator().manual_seed(3))
    assert y.shape == (K, K)
    torch.testing.assert_close(y.sum(1), torch.ones(K))
    expected_pixels = (y * torch.arange(K).float()).sum(1)
    torch.testing.assert_close(x[:, 0, 0, 0], expected_pixels)
    # A real blend: some image now holds two classes.
    assert (y.max(1).values < 1).any()


def test_probability_targets_are_blended_as_they_are() -> None:
    probs = torch.softmax(torch.randn(6, K, generator=torch.Generator().manual_seed(0)), 1)
    _, y = mix_batch(torch.zeros(6, 3, 4, 4), probs, 1.0, K, torch.Generator().manual_seed(1))
    torch.testing.assert_close(y.sum(1), torch.ones(6))
    assert not torch.allclose(y, probs)


def test_the_same_seed_blends_the_same_pairs() -> None:
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0])
    first = mix_batch(class_images(labels), labels, 0.2, K, torch.Generator().manual_seed(7))
    again = mix_batch(class_images(labels), labels, 0.2, K, torch.Generator().manual_seed(7))
    other = mix_batch(class_images(labels), labels, 0.2, K, torch.Generator().manual_seed(8))
    torch.testing.assert_close(first, again)
    assert not torch.equal(first[1], other[1])


@pytest.mark.parametrize("alpha", [0.0, -0.5])
def test_alpha_must_be_positive(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        mix_batch(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]), alpha, K, torch.Generator())


def test_class_indices_become_one_hot_rows() -> None:
    y = as_probabilities(torch.tensor([2, 0]), K)
    assert y.dtype == torch.float32
    assert y.argmax(1).tolist() == [2, 0] and y.sum().item() == 2


def test_training_batches_carry_blended_targets_only_with_mixup() -> None:
    rng = np.random.default_rng(0)
    pool = torch.from_numpy(rng.integers(0, 256, (10, 3, 12, 16), dtype=np.uint8))
    labels = np.arange(10) % K
    geometry = Geometry(16, 12, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

    def first_batch(mixup: float) -> tuple[torch.Tensor, torch.Tensor]:
        batches = training_batches(
            pool,
            labels,
            np.arange(10),
            torch.ones(10),
            1,
            8,
            AugmentConfig(),
            geometry,
            torch.Generator().manual_seed(0),
            mixup,
        )
        return next(batches)

    _, plain = first_batch(0.0)
    x, mixed = first_batch(0.5)
    assert not plain.is_floating_point()
    assert mixed.shape == (8, K) and mixed.is_floating_point()
    torch.testing.assert_close(mixed.sum(1), torch.ones(8))
    assert x.shape == (8, 3, 12, 16)
