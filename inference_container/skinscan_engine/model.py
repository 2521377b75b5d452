"""The SkinScan network: torchvision's ResNet-50 with a head over the seven HAM10000 diagnoses.

Training, evaluation, the local engine and the inference container all build the network here,
so the architecture, the class order and the malignant set have one definition.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models import resnet50
from torchvision.models.resnet import Bottleneck

#: HAM10000 diagnoses, in the order of the network's outputs.
CLASSES: tuple[str, ...] = ("nv", "bkl", "df", "vasc", "mel", "bcc", "akiec")
#: Diagnoses that count as malignant: p_malignant = p(mel) + p(bcc) + p(akiec).
MALIGNANT: frozenset[str] = frozenset({"mel", "bcc", "akiec"})
CLASS_NAMES: dict[str, str] = {
    "nv": "melanocytic nevus",
    "bkl": "benign keratosis-like lesion",
    "df": "dermatofibroma",
    "vasc": "vascular lesion",
    "mel": "melanoma",
    "bcc": "basal cell carcinoma",
    "akiec": "actinic keratosis / intraepithelial carcinoma",
}


def malignant_mask(classes: tuple[str, ...] = CLASSES) -> torch.Tensor:
    """A boolean vector over ``classes`` marking the malignant ones."""
    return torch.tensor([c in MALIGNANT for c in classes])


def build_model(
    num_classes: int = len(CLASSES), dropout: float = 0.2, zero_init_residual: bool = True
) -> nn.Module:
    """ResNet-50 (randomly initialised; nothing is downloaded) with a dropout + linear head.

    The head stays a single linear layer after global average pooling: that is what lets
    Grad-CAM weights come from the head alone, without a backward pass through the network.
    """
    # zero_init_residual starts each block as an identity, which helps training from scratch.
    model = resnet50(weights=None, zero_init_residual=zero_init_residual)
    model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.fc.in_features, num_classes))
    return model


def head_linear(model: nn.Module) -> nn.Linear:
    """The final linear layer of a network built by :func:`build_model`."""
    fc = model.fc
    return fc[-1] if isinstance(fc, nn.Sequential) else fc


def forward_with_features(
    model: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward pass returning (layer4 activations, pooled features, logits).

    The same pass feeds the classifier and Grad-CAM (layer4 activations), so explaining a
    prediction costs no second pass.
    """
    _, fmap = trunk_features(model, x)
    pooled = torch.flatten(model.avgpool(fmap), 1)
    logits = model.fc(pooled)
    return fmap, pooled, logits


def trunk_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The convolutional trunk alone: input batch to (``layer3``, ``layer4``) activations.

    The engine runs this part under bf16 autocast and the pooling + linear head in fp32, so
    probabilities keep full precision at no cost; ``layer3`` feeds the "unknown" gate.
    """
    x = model.conv1(x)
    x = model.bn1(x)
    x = model.relu(x)
    x = model.maxpool(x)
    x = model.layer1(x)
    x = model.layer2(x)
    mid = model.layer3(x)
    return mid, model.layer4(mid)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm of a network from :func:`build_model` into the convolution before it.

    In eval mode a BatchNorm is a fixed per-channel scale and shift, so it can live in the
    convolution's weights and bias instead: the outputs stay the same up to float rounding,
    and the trunk skips one pass over each of its 53 activation maps. Changes ``model`` in
    place (it must be in eval mode; a folded network cannot be trained) and returns it.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a network in eval mode")

    def fold(parent: nn.Module, conv: str, bn: str) -> None:
        setattr(parent, conv, fuse_conv_bn_eval(getattr(parent, conv), getattr(parent, bn)))
        setattr(parent, bn, nn.Identity())

    fold(model, "conv1", "bn1")
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in layer:
            if not isinstance(block, Bottleneck):
                raise TypeError(f"expected ResNet-50 bottleneck blocks, found {type(block)}")
            for i in (1, 2, 3):
                fold(block, f"conv{i}", f"bn{i}")
            if block.downsample is not None:
                fold(block.downsample, "0", "1")
    return model
