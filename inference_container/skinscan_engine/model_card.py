"""The shipped model: fp16 safetensors weights plus a JSON model card.

The card carries everything inference needs besides the weights (input geometry, class names,
temperature, decision threshold, "unknown" gate threshold, version) and the metrics that the
evaluation measured, so the engine never has to guess how the model was trained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .model import CLASSES, build_model
from .ood import LayeredGate
from .preprocessing import Geometry

CARD_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".safetensors"
OOD_PREFIX = "ood."


@dataclass
class ModelCard:
    """What inference needs to know about a trained model, and how well it did."""

    version: str
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    input_width: int = 128
    input_height: int = 96
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    illuminant: list[float] | None = None  # colour constancy target; None: images as they are
    temperature: float = 1.0
    threshold: float = 0.5
    threshold_aim: str = ""
    ood: dict[str, Any] = field(default_factory=lambda: {"method": "none", "threshold": None})
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    licence: str = "CC BY-NC 4.0 (trained on HAM10000); research and education only"

    @property
    def geometry(self) -> Geometry:
        return Geometry(
            width=self.input_width,
            height=self.input_height,
            mean=tuple(self.mean),  # type: ignore[arg-type]
            std=tuple(self.std),  # type: ignore[arg-type]
            illuminant=tuple(self.illuminant) if self.illuminant else None,  # type: ignore[arg-type]
        )

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        data = json.loads(Path(path).read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class LoadedModel:
    """A network ready for inference, with its card and its "unknown" gate (if fitted)."""

    network: nn.Module
    card: ModelCard
    gate: LayeredGate | None


def resolve_paths(path: Path) -> tuple[Path, Path]:
    """Accept the weights file, the card, their common stem, or a folder with one model."""
    path = Path(path)
    if path.is_dir():
        cards = sorted(path.glob(f"*{CARD_SUFFIX}"))
        cards = [c for c in cards if c.with_suffix(WEIGHTS_SUFFIX).is_file()]
        if len(cards) != 1:
            raise FileNotFoundError(f"expected exactly one model (card + weights) in {path}")
        path = cards[0]
    stem = path.with_suffix("") if path.suffix in (CARD_SUFFIX, WEIGHTS_SUFFIX) else path
    weights, card = stem.with_suffix(WEIGHTS_SUFFIX), stem.with_suffix(CARD_SUFFIX)
    for p in (weights, card):
        if not p.is_file():
            raise FileNotFoundError(f"model file {p} not found")
    return weights, card


def save_model(
    network: nn.Module, card: ModelCard, stem: Path, gate: LayeredGate | None = None
) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` (fp16) and ``stem.json``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in network.state_dict().items()
        if v.is_floating_point()
    }
    # Integer buffers (BatchNorm's num_batches_tracked) are not needed for inference.
    if gate is not None:
        tensors.update(
            {k: v.to(torch.float16).contiguous() for k, v in gate.to_tensors(OOD_PREFIX).items()}
        )
        card.ood = {**card.ood, **gate.card_fields()}
    weights, card_path = stem.with_suffix(WEIGHTS_SUFFIX), stem.with_suffix(CARD_SUFFIX)
    save_file(tensors, str(weights), metadata={"version": card.version})
    card.save(card_path)
    return weights, card_path


def load_model(path: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a shipped model for inference (fp32 weights on ``device``, eval mode)."""
    weights, card_path = resolve_paths(path)
    card = ModelCard.load(card_path)
    tensors = load_file(str(weights))
    # The random initial weights are overwritten below; drawing them on a forked generator keeps
    # loading a model from moving the caller's random state (a training run's seed).
    with torch.random.fork_rng(devices=[]):
        network = build_model(num_classes=len(card.classes))
    state = {k: v.float() for k, v in tensors.items() if not k.startswith(OOD_PREFIX)}
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"weights do not match the model: missing={missing} unexpected={unexpected}"
        )
    gate = None
    if any(k.startswith(OOD_PREFIX) for k in tensors) and card.ood.get("threshold") is not None:
        gate = LayeredGate.from_card(tensors, card.ood, OOD_PREFIX).to(device)
    network.to(device).eval()
    return LoadedModel(network=network, card=card, gate=gate)
