import numpy as np
import torch

from skinscan_engine.preprocessing import to_batch
from skinscan_training.augment import AugmentConfig, augment
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
