"""Grad-CAM on ``layer4`` in closed form: no backward pass through the network.

The head is linear on globally average-pooled ``layer4`` activations ``A`` (dropout is the
identity in eval mode), so ``logit_c = sum_k W[c, k] * mean_ij A_k[i, j] + b_c`` and the
gradient of ``logit_c`` with respect to every ``A_k[i, j]`` is ``W[c, k] / (H * W)``. Grad-CAM's
channel weights (spatially averaged gradients) are therefore that constant, and the map is
``relu(sum_k W[c, k] / (H * W) * A_k)``: one small contraction over activations that the
forward pass produced anyway.

Scaling follows pytorch-grad-cam so that maps compare one to one: min-max normalise the
layer map (epsilon 1e-7), resize bilinearly (half-pixel centres, like OpenCV's INTER_LINEAR)
to the input size, then min-max normalise again.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: The epsilon pytorch-grad-cam adds to the maximum when normalising.
EPS = 1e-7


def channel_weights(head: nn.Linear, classes: torch.Tensor, spatial_size: int) -> torch.Tensor:
    """Grad-CAM channel weights (N x K) for one class per image: ``W[c] / (H * W)``."""
    return head.weight.detach().float()[classes] / spatial_size


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-map ``(m - min) / (1e-7 + max(m - min))`` over the last two dimensions."""
    flat = maps.flatten(-2)
    flat = flat - flat.amin(dim=-1, keepdim=True)
    flat = flat / (EPS + flat.amax(dim=-1, keepdim=True))
    return flat.view_as(maps)


def layer_cam(fmap: torch.Tensor, head: nn.Linear, classes: torch.Tensor) -> torch.Tensor:
    """Unnormalised Grad-CAM (N x h x w, fp32, ReLU applied) on the layer's own grid."""
    h, w = fmap.shape[-2:]
    weights = channel_weights(head, classes.to(fmap.device), h * w)
    # fp32 contraction even when the trunk ran in bf16: the map is tiny, precision is free.
    cam = torch.einsum("nk,nkhw->nhw", weights, fmap.float())
    return cam.clamp_min_(0)


def gradcam(
    fmap: torch.Tensor, head: nn.Linear, classes: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Normalised Grad-CAM maps, N x height x width in [0, 1], for ``classes`` (one per image).

    ``fmap`` is the ``layer4`` output of the same forward pass; ``size`` is (height, width)
    of the network input.
    """
    cam = minmax(layer_cam(fmap, head, classes))
    cam = F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
    return minmax(cam.squeeze(1))
