"""Fit the "unknown" gate of a trained network, in a run's export or for a shipped model.

The gate's in-distribution region is fitted on the training part twice over: the images as
they are, and once more under the training augmentation (rotations, scale, colour jitter).
The network was taught that those changes do not alter a lesion, so the gate should not
call a lesion "unknown" for them either; fitted on plain images alone, it rejected many
dermoscopic images from other clinics and cameras. The threshold is then set on the
validation part.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skinscan_engine.model import CLASSES, trunk_features
from skinscan_engine.model_card import load_model, resolve_paths, save_model
from skinscan_engine.ood import LayeredGate, gate_features
from skinscan_engine.preprocessing import Geometry

from .augment import AugmentConfig
from .batches import model_inputs
from .dataset import load_images, read_metadata
from .devices import autocast
from .split import model_split

#: The issue's cap: at most this share of validation images may be answered "unknown".
MAX_OOD_REJECT = 0.05
#: The share the gate is calibrated to reject (within the cap). Each validation image
#: rejected is a real lesion a user cannot get an answer for; 3% rather than 5% lets more
#: lesions through while non-skin photos stay rejected (docs/model/experiments.md).
GATE_REJECT = 0.03


@dataclass
class GateFit:
    """A fitted, calibrated gate with what the model card says about it."""

    gate: LayeredGate
    val_scores: torch.Tensor
    max_reject: float

    def card_fields(self) -> dict[str, object]:
        """The card's ``ood`` entry (the gate's tensors go in the weights file)."""
        return {
            **self.gate.card_fields(),
            "features": "L2-normalised pooled layer4 means, and layer3 means and standard "
            "deviations",
            "fitted_on": "training part, plain and once more under the training augmentation",
            "max_reject_in_distribution": self.max_reject,
            "val_rejected": float((self.val_scores > self.gate.threshold).float().mean()),
        }


@torch.inference_mode()
def features_of(
    model: torch.nn.Module,
    images: np.ndarray,
    geometry: Geometry,
    device: torch.device,
    bf16: bool,
    augment_cfg: AugmentConfig | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: str | None = None,
) -> dict[str, torch.Tensor]:
    """The gate's features of uint8 N x H x W x 3 images, optionally augmented first."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for x in model_inputs(images, geometry, device, batch_size, progress, augment_cfg, seed):
        with autocast(device, bf16):
            mid, last = trunk_features(model, x)
        for name, f in gate_features(mid, last).items():
            parts.setdefault(name, []).append(f.cpu())
    return {name: torch.cat(fs) for name, fs in parts.items()}


def fit_gate(
    model: torch.nn.Module,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    geometry: Geometry,
    device: torch.device,
    bf16: bool,
    augment_cfg: AugmentConfig,
    max_reject: float = GATE_REJECT,
) -> GateFit:
    """Fit on plain + augmented training images, standardise and calibrate on validation."""
    plain = features_of(model, train_images, geometry, device, bf16, progress="gate: training")
    augmented = features_of(
        model, train_images, geometry, device, bf16, augment_cfg, progress="gate: augmented"
    )
    val = features_of(model, val_images, geometry, device, bf16, progress="gate: validation")
    train = {name: torch.cat([plain[name], augmented[name]]) for name in plain}
    labels = torch.from_numpy(np.concatenate([train_labels, train_labels]))
    gate = LayeredGate.fit(train, labels, len(CLASSES), val)
    scores = gate.score(val)
    gate.calibrate(scores, max_reject)
    return GateFit(gate, scores, max_reject)


def refit_gate(
    model_path: Path,
    data_dir: Path,
    split_file: Path | None = None,
    out_stem: Path | None = None,
    cache_dir: Path | None = None,
    max_reject: float = GATE_REJECT,
    version: str | None = None,
) -> Path:
    """Fit a new gate for a shipped model (weights unchanged) and save it; returns the stem.

    The gate changes answers ("unknown" or not), so a shipped model should get a new
    ``version``; the prediction history records which one answered.
    """
    loaded = load_model(model_path)
    card = loaded.card
    records = read_metadata(data_dir)
    split = model_split(records, split_file, int(card.training.get("split_seed", 0)))
    by_id = {r.image_id: r for r in records}
    train = [by_id[i] for i in split["train"]]
    val = [by_id[i] for i in split["val"]]
    geometry = card.geometry
    cfg = AugmentConfig(**(card.training.get("config", {}).get("augment") or {}))
    device = torch.device("cpu")
    fit = fit_gate(
        loaded.network,
        load_images(data_dir, train, geometry, cache_dir),
        np.array([r.label for r in train]),
        load_images(data_dir, val, geometry, cache_dir),
        geometry,
        device,
        bf16=False,
        augment_cfg=cfg,
        max_reject=max_reject,
    )
    card.ood = fit.card_fields()
    card.version = version or card.version
    # Figures measured with the old gate no longer hold; `skinscan evaluate` measures again.
    card.metrics = {"validation": card.metrics.get("validation", {})}
    stem = Path(out_stem) if out_stem else resolve_paths(model_path)[0].with_suffix("")
    save_model(loaded.network, card, stem, fit.gate)
    return stem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model stem, weights, card or folder")
    parser.add_argument("--data", required=True, help="HAM10000 folder (training + validation)")
    parser.add_argument("--split", help="split.json (default: rebuilt from the card's seed)")
    parser.add_argument("--out", help="stem to write (default: overwrite --model)")
    parser.add_argument("--cache-dir", help="cache for decoded HAM10000 images")
    parser.add_argument(
        "--max-reject", type=float, default=GATE_REJECT, help="share of validation to reject"
    )
    parser.add_argument("--version", help="version of the model with its new gate")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.max_reject <= MAX_OOD_REJECT:
        print(f"--max-reject must be in (0, {MAX_OOD_REJECT}]")
        return 2
    stem = refit_gate(
        Path(args.model),
        Path(args.data),
        Path(args.split) if args.split else None,
        Path(args.out) if args.out else None,
        Path(args.cache_dir) if args.cache_dir else None,
        args.max_reject,
        args.version,
    )
    print(f"gate fitted and saved with {stem}")
    return 0
