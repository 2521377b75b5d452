"""Batch augmentation for dermoscopy, on uint8 tensors in memory.

Dermoscopic images have no canonical orientation, so flips and rotations of any angle are
label-preserving; small scale changes and colour jitter model differences between cameras.
Everything runs on whole batches (one ``grid_sample``), which keeps augmentation cheap next
to a ResNet-50 step on the CPU. The random draws always come from a CPU generator, so a seed
gives the same transforms whichever device the batch is on; the pixel work runs on that device.
The few draws move there with ``non_blocking``: a blocking copy to a GPU first waits for
every queued kernel, which would idle the GPU once per copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_deg: float = 20.0
    right_angle_prob: float = 0.5
    scale_range: tuple[float, float] = (0.9, 1.15)
    max_translate: float = 0.05
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue_shift: float = 0.03


#: The largest ``--augment-strength``: twice the shipped ranges (rotations up to 40 degrees,
#: scale 0.8-1.3, brightness, contrast and saturation +-40%) is already far past a camera's.
MAX_STRENGTH = 2.0


def check_strength(strength: float) -> float:
    """``strength`` if it is a usable augmentation strength, else a ValueError saying why."""
    if not 0 <= strength <= MAX_STRENGTH:
        raise ValueError(f"augmentation strength must be in [0, {MAX_STRENGTH}], got {strength}")
    return strength


def with_strength(cfg: AugmentConfig, strength: float) -> AugmentConfig:
    """``cfg`` with its continuous ranges (small rotations, scale, shift, colour jitter) scaled
    by ``strength`` about no change. Flips and right-angle turns stay as they are: dermoscopy
    has no orientation, so they teach a fact about the images, not a penalty on the fit."""
    check_strength(strength)
    lo, hi = cfg.scale_range
    return replace(
        cfg,
        max_rotation_deg=cfg.max_rotation_deg * strength,
        scale_range=(1 - (1 - lo) * strength, 1 + (hi - 1) * strength),
        max_translate=cfg.max_translate * strength,
        brightness=cfg.brightness * strength,
        contrast=cfg.contrast * strength,
        saturation=cfg.saturation * strength,
        hue_shift=cfg.hue_shift * strength,
    )


def augment(batch: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Randomly transform an N x 3 x H x W float batch in [0, 1]; returns a new batch."""
    n, _, h, w = batch.shape
    g = generator
    dev = batch.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=g) * (hi - lo) + lo

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.view(n, 1, 1, 1).to(dev, non_blocking=True)

    angle = uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg) * math.pi / 180
    quarter = (torch.rand(n, generator=g) < cfg.right_angle_prob).float() * (math.pi / 2)
    angle = angle + quarter
    scale = uniform(*cfg.scale_range)
    flip_x = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    flip_y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    aspect = w / h  # affine_grid works in normalised coordinates; keep rotations rigid
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * flip_x
    theta[:, 0, 1] = -sin * flip_y / aspect
    theta[:, 1, 0] = sin * flip_x * aspect
    theta[:, 1, 1] = cos * flip_y
    theta[:, 0, 2] = uniform(-cfg.max_translate, cfg.max_translate)
    theta[:, 1, 2] = uniform(-cfg.max_translate, cfg.max_translate)
    grid = F.affine_grid(theta.to(dev, non_blocking=True), [n, 3, h, w], align_corners=False)
    out = F.grid_sample(
        batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )

    # Colour jitter: brightness, contrast, saturation, and a small hue rotation in RGB space.
    out = out * per_image(uniform(1 - cfg.brightness, 1 + cfg.brightness))
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * per_image(uniform(1 - cfg.contrast, 1 + cfg.contrast)) + mean
    grey = 0.299 * out[:, 0:1] + 0.587 * out[:, 1:2] + 0.114 * out[:, 2:3]
    out = (out - grey) * per_image(uniform(1 - cfg.saturation, 1 + cfg.saturation)) + grey
    out = _rotate_hue(out, uniform(-cfg.hue_shift, cfg.hue_shift) * 2 * math.pi)
    return out.clamp_(0.0, 1.0)


def _rotate_hue(batch: torch.Tensor, radians: torch.Tensor) -> torch.Tensor:
    """Rotate colours about the grey axis (a linear approximation of a hue shift)."""
    n = batch.shape[0]
    c, s = torch.cos(radians), torch.sin(radians)
    k = 1.0 / 3.0
    sq = math.sqrt(k)
    # Rodrigues' rotation about the unit vector (1,1,1)/sqrt(3).
    m = torch.empty(n, 3, 3)
    m[:, 0, 0] = c + (1 - c) * k
    m[:, 0, 1] = k * (1 - c) - sq * s
    m[:, 0, 2] = k * (1 - c) + sq * s
    m[:, 1, 0] = k * (1 - c) + sq * s
    m[:, 1, 1] = c + k * (1 - c)
    m[:, 1, 2] = k * (1 - c) - sq * s
    m[:, 2, 0] = k * (1 - c) - sq * s
    m[:, 2, 1] = k * (1 - c) + sq * s
    m[:, 2, 2] = c + k * (1 - c)
    return torch.einsum("nij,njhw->nihw", m.to(batch.device, non_blocking=True), batch)
