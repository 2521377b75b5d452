import numpy as np
import pytest
import torch

from skinscan_engine.preprocessing import to_batch
from skinscan_training.augment import MAX_STRENGTH, AugmentConfig, augment, with_strength
from skinscan_training.run_data import image_pool


def _batch(n: int = 4) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.random((n, 3, 24, 32), dtype=np.float32))


def test_same_seed_same_transforms_and_pixels_stay_in_range() -> None:
    x = _batch()
    a = augment(x, AugmentConfig(), torch.Generator().manual_seed(7))
    b = augment(x, AugmentConfig(), torch.Generator().manual_seed(7))
    c = augment(x, AugmentConfig(), torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.device == x.device
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_no_op_config_returns_the_image() -> None:
    still = AugmentConfig(
        max_rotation_deg=0.0,
        right_angle_prob=0.0,
        scale_range=(1.0, 1.0),
        max_translate=0.0,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        hue_shift=0.0,
    )
    x = _batch()
    # Flips are always drawn; a left-right and up-down symmetric image is unchanged by them.
    x = (x + x.flip(-1) + x.flip(-2) + x.flip(-1).flip(-2)) / 4
    assert torch.allclose(augment(x, still, torch.Generator().manual_seed(0)), x, atol=1e-5)


def test_batches_gathered_from_the_pool_match_the_images() -> None:
    images = np.random.default_rng(1).integers(0, 256, (10, 24, 32, 3), dtype=np.uint8)
    pool = image_pool(images, torch.device("cpu"))
    rows = np.array([3, 0, 9, 3])
    assert torch.equal(pool[torch.from_numpy(rows)], to_batch(images[rows]))


def test_strength_one_is_the_shipped_augmentation_and_zero_keeps_only_the_symmetries() -> None:
    shipped = AugmentConfig()
    assert with_strength(shipped, 1.0) == shipped
    none = with_strength(shipped, 0.0)
    assert none.right_angle_prob == shipped.right_angle_prob
    assert none.scale_range == (1.0, 1.0)
    assert none.max_rotation_deg == none.max_translate == 0.0
    assert none.brightness == none.contrast == none.saturation == none.hue_shift == 0.0
    half = with_strength(shipped, 0.5)
    assert half.max_rotation_deg == 10.0 and half.brightness == 0.1
    assert half.scale_range == pytest.approx((0.95, 1.075))


def test_strength_zero_still_turns_and_flips_but_does_not_re_light() -> None:
    x = _batch(16)
    means = x.mean(dim=(1, 2, 3))
    # Only flips and quarter turns move pixels: each image keeps its mean (a quarter turn of a
    # 4:3 image resamples it, hence the tolerance); the colour jitter of strength 1 does not.
    still = augment(x, with_strength(AugmentConfig(), 0.0), torch.Generator().manual_seed(3))
    jittered = augment(x, AugmentConfig(), torch.Generator().manual_seed(3))
    assert torch.allclose(still.mean(dim=(1, 2, 3)), means, atol=0.02)
    assert not torch.allclose(jittered.mean(dim=(1, 2, 3)), means, atol=0.02)


@pytest.mark.parametrize("strength", [-0.1, MAX_STRENGTH + 0.1])
def test_strength_outside_its_range_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match="augmentation strength"):
        with_strength(AugmentConfig(), strength)
