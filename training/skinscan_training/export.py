"""Turn a finished run into a shippable model: calibrate, fit the "unknown" gate, export.

Everything here is fitted on the training and validation parts only; the test part stays
untouched for ``skinscan evaluate``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from pathlib import Path

import torch

from skinscan_engine.model import CLASSES, malignant_mask
from skinscan_engine.model_card import ModelCard, save_model

from .augment import AugmentConfig
from .calibration import (
    binary_ece,
    fit_temperature,
    stored_threshold,
    threshold_for_sensitivity,
    top_label_ece,
)
from .checkpoints import checkpoint_geometry, load_checkpoint, network_from
from .config import TrainConfig
from .devices import pick_device, wants_bf16
from .gate import fit_gate
from .metrics import binary_metrics
from .plots import plot_training_curves
from .run_data import prepare_data
from .served import served_p_malignant
from .validation import predict_logits

#: A triage tool should not miss cancers: the threshold keeps validation sensitivity >= this.
TARGET_SENSITIVITY = 0.90


def _figure(value: float) -> float | None:
    """Rounded for the card; None (JSON null) for an undefined figure, never NaN."""
    return round(value, 4) if math.isfinite(value) else None


def finalize_run(
    run_dir: Path,
    version: str | None = None,
    out_stem: Path | None = None,
    checkpoint: Path | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
) -> Path:
    """Calibrate ``checkpoint`` (default ``run_dir/best.pt``) and export it; returns the stem.

    ``data_dir`` and ``cache_dir``, if given, replace the checkpoint's: ``best.pt`` may date
    from before a resume that was given the data's new place.
    """
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(Path(checkpoint) if checkpoint else run_dir / "best.pt")
    cfg = TrainConfig.from_saved(ckpt["config"])
    if data_dir is not None:
        cfg = replace(cfg, data=str(data_dir))
    if cache_dir is not None:
        cfg = replace(cfg, cache_dir=str(cache_dir))
    device = pick_device(cfg.device)
    bf16 = wants_bf16(cfg, device)
    geometry = checkpoint_geometry(ckpt)
    model = network_from(ckpt["model"], device).eval()

    data = prepare_data(cfg, run_dir)
    tr, va = data.index["train"], data.index["val"]
    val_logits = predict_logits(
        model, data.images[va], geometry, device, bf16, progress="validation"
    )
    y_val = torch.from_numpy(data.labels[va])

    temperature = fit_temperature(val_logits, y_val)
    probs_raw = val_logits.softmax(1).numpy()
    probs = (val_logits / temperature).softmax(1).numpy()
    mal = malignant_mask().numpy()
    p_mal = probs[:, mal].sum(1)
    y_mal = mal[data.labels[va]]
    # A first threshold from the training network's scores; the card's own is chosen below on
    # the scores of the engine serving the exported model.
    threshold = stored_threshold(threshold_for_sensitivity(p_mal, y_mal, TARGET_SENSITIVITY))

    gate = fit_gate(
        model,
        data.images[tr],
        data.labels[tr],
        data.images[va],
        geometry,
        device,
        bf16,
        AugmentConfig(**cfg.augment),
    )

    version = version or f"1.0.0+{cfg.width}x{cfg.height}.{dt.date.today():%Y%m%d}"
    card = ModelCard(
        version=version,
        classes=list(CLASSES),
        input_width=cfg.width,
        input_height=cfg.height,
        mean=list(geometry.mean),
        std=list(geometry.std),
        illuminant=list(geometry.illuminant) if geometry.illuminant else None,
        temperature=round(temperature, 4),
        threshold=threshold,
        threshold_aim=f"sensitivity >= {TARGET_SENSITIVITY} on the validation part",
        ood=gate.card_fields(),
        metrics={
            "validation": {
                "images": len(va),
                "ece_top_label_before": round(top_label_ece(probs_raw, data.labels[va]), 4),
                "ece_top_label_after": round(top_label_ece(probs, data.labels[va]), 4),
                "ece_malignant_before": round(binary_ece(probs_raw[:, mal].sum(1), y_mal), 4),
                "ece_malignant_after": round(binary_ece(p_mal, y_mal), 4),
            }
        },
        training={
            "data": "HAM10000 (10,015 dermoscopic images, 200x150), lesion-grouped 70/15/15 split",
            "split_seed": cfg.split_seed,
            "epochs": ckpt["epoch"],
            # The exported weights are the mean of these epochs' (None: a single epoch's).
            "averaged_epochs": ckpt.get("averaged_epochs"),
            # Checkpoints from before this field was written were made on this machine.
            "precision": ckpt.get("precision") or ("bf16" if bf16 else "fp32"),
            "initialised_from": ckpt.get("init_lineage"),
            "config": {
                k: v for k, v in ckpt["config"].items() if k not in ("data", "out", "cache_dir")
            },
        },
    )
    model.float()
    stem = Path(out_stem) if out_stem else run_dir / "export" / "skinscan-resnet50"
    _, card_path = save_model(model, card, stem, gate.gate)
    # The card's threshold is the one served: chosen on the engine's scores at each precision it
    # may serve in (the lowest), rounded down, and every validation figure measured at it.
    served = served_p_malignant(stem, data.images[va], device)
    threshold = stored_threshold(
        min(threshold_for_sensitivity(p, y_mal, TARGET_SENSITIVITY) for p in served.values())
    )
    at_threshold = binary_metrics(y_mal, served["fp32"], threshold)
    card.threshold = threshold
    card.metrics["validation"] = {
        "images": len(va),
        "auc_malignant": _figure(at_threshold["auc"]),
        "sensitivity": _figure(at_threshold["sensitivity"]),
        "specificity": _figure(at_threshold["specificity"]),
        **{k: v for k, v in card.metrics["validation"].items() if k.startswith("ece_")},
        "threshold_chosen_on": f"the served engine's scores ({', '.join(served)})",
    }
    card.save(card_path)
    (run_dir / "calibration.json").write_text(json.dumps(card.metrics, indent=2))
    log = run_dir / "log.jsonl"
    if log.is_file():
        entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        plot_training_curves(entries, run_dir / "training_curves.png")
    print(
        json.dumps(
            {
                "temperature": temperature,
                "threshold": threshold,
                "ood_threshold": gate.gate.threshold,
                **card.metrics["validation"],
            },
            indent=1,
        )
    )
    return stem
