"""Grad-CAM on ``layer4`` in closed form: no backward pass through the network.

The head is linear on globally average-pooled ``layer4`` activations ``A`` (dropout is the
identity in eval mode), so ``logit_c = sum_k W[c, k] * mean_ij A_k[i, j] + b_c`` and the
gradient of ``logit_c`` with respect to every ``A_k[i, j]`` is ``W[c, k] / (H * W)``. For any
score ``s`` computed from the logits, the chain rule gives Grad-CAM's channel weights (spatially
averaged gradients) as ``sum_c ds/dlogit_c * W[c, k] / (H * W)``, and the map is
``relu(sum_k weight_k * A_k)``: one small contraction over activations that the forward pass
produced anyway. ``targets`` holds ``ds/dlogit`` per image: a one-hot row explains one class
(:func:`class_targets`); :func:`probability_targets` explains a group's probability, such as
``p_malignant``, which is what the verdict is made of.

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


def class_targets(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``ds/dlogit`` (N x C) for ``s`` = the logit of one class per image: one-hot rows."""
    return F.one_hot(classes.long(), num_classes).float()


def probability_targets(
    probs: torch.Tensor, members: torch.Tensor, temperature: float, sign: torch.Tensor
) -> torch.Tensor:
    """``ds/dlogit`` (N x C) for ``s = sign * sum_{c in members} p_c``, ``p = softmax(logit / T)``.

    ``d p_group / d logit_c = p_c * (1[c in group] - p_group) / T``. ``sign`` (N) is +1 to explain
    the group's probability (what made it malignant), -1 its complement (what made it benign).
    """
    group = members.to(probs.device).float()
    p_group = (probs.float() * group).sum(dim=1, keepdim=True)
    return sign.to(probs.device).float()[:, None] * probs.float() * (group - p_group) / temperature


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-map ``(m - min) / (1e-7 + max(m - min))`` over the last two dimensions."""
    flat = maps.flatten(-2)
    flat = flat - flat.amin(dim=-1, keepdim=True)
    flat = flat / (EPS + flat.amax(dim=-1, keepdim=True))
    return flat.view_as(maps)


def layer_cam(fmap: torch.Tensor, head: nn.Linear, targets: torch.Tensor) -> torch.Tensor:
    """Unnormalised Grad-CAM (N x h x w, fp32, ReLU applied) on the layer's own grid."""
    h, w = fmap.shape[-2:]
    weights = targets.to(fmap.device).float() @ head.weight.detach().float() / (h * w)
    # fp32 contraction even when the trunk ran in bf16: the map is tiny, precision is free.
    cam = torch.einsum("nk,nkhw->nhw", weights, fmap.float())
    return cam.clamp_min_(0)


def gradcam(
    fmap: torch.Tensor, head: nn.Linear, targets: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Normalised Grad-CAM maps, N x height x width in [0, 1], of the scores ``targets``
    describes (``ds/dlogit`` per image: :func:`class_targets`, :func:`probability_targets`).

    ``fmap`` is the ``layer4`` output of the same forward pass; ``size`` is (height, width)
    of the network input.
    """
    cam = minmax(layer_cam(fmap, head, targets))
    cam = F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
    return minmax(cam.squeeze(1))
