"""Evaluate a shipped model on the lesion-grouped test part and on an external source.

Writes ``report.json`` and PNG plots into the output folder. Headline figures carry 95%
bootstrap intervals that resample lesions (HAM10000) or images (ISIC 2017, one per lesion).
The validation part can be scored the same way, for ship decisions made before the test part
is looked at; its figures never go into the model card.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.model import malignant_mask
from skinscan_engine.model_card import ModelCard, load_model
from skinscan_engine.preprocessing import decode_image, fit_to_geometry, to_batch
from skinscan_engine.verdict import is_unknown, verdict_codes

from .calibration import binary_ece, top_label_ece
from .dataset import Record, load_images
from .metrics import binary_metrics, bootstrap_ci, multiclass_metrics
from .plots import plot_confusion, plot_reliability, plot_roc
from .split import SplitMismatchError, model_split, read_ham

TARGETS = {"auc": 0.90, "sensitivity": 0.85, "specificity": 0.75, "f1": 0.708, "ece_after": 0.05}
#: The light-colour check draws each channel's gain from 1 +- this (a white balance ~10% off).
LIGHT_GAIN_SPREAD = 0.1
#: Parts of the split that ``evaluate`` scores (name -> key in split.json); only the test
#: part's figures reach the card. The training part, beside the validation part, shows how
#: closely the network fits the images it learnt from (under- or over-fitting).
PARTS = {"test": "test", "validation": "val", "training": "train"}


@dataclass
class Scores:
    logits: np.ndarray  # N x C, before temperature
    probs: np.ndarray  # N x C, after temperature
    p_malignant: np.ndarray
    ood: np.ndarray


@torch.inference_mode()
def score_images(
    engine: Engine, images: np.ndarray, batch: int = 64, desc: str = "scoring"
) -> Scores:
    """Score uint8 images exactly as the engine serves them (precision, temperature, gate)."""
    logits, ood = [], []
    for s in tqdm(range(0, len(images), batch), desc=desc, unit="batch", leave=False):
        _, pooled, out = engine.forward(to_batch(images[s : s + batch]))
        probs = F.softmax(out / engine.temperature, dim=1)
        logits.append(out.cpu())
        ood.append(engine.ood_scores(pooled, out, probs).float().cpu())
    lg = torch.cat(logits)
    probs = (lg / engine.temperature).softmax(1).numpy()
    mask = engine.malignant.cpu().numpy()
    return Scores(
        logits=lg.numpy(),
        probs=probs,
        p_malignant=probs[:, mask].sum(1),
        ood=torch.cat(ood).numpy(),
    )


def verdicts(sc: Scores, threshold: float, ood_threshold: float | None) -> np.ndarray:
    """The engine's verdict per image: 0 benign, 1 malignant, 2 unknown."""
    return verdict_codes(sc.p_malignant, sc.ood, threshold, ood_threshold)


def unknown_rate(sc: Scores, ood_threshold: float | None) -> float | None:
    """The share of images the gate answers "unknown" for (None for a card without a gate)."""
    if ood_threshold is None:
        return None
    return float(np.mean(is_unknown(sc.ood, ood_threshold)))


def light_colour_check(
    model: Engine,
    images: np.ndarray,
    y: np.ndarray,
    plain: Scores,
    spread: float = LIGHT_GAIN_SPREAD,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the images again under another light colour, as another dermatoscope or white
    balance would show them: each image's channels scaled by gains drawn from 1 +- spread."""
    rng = np.random.default_rng(seed)
    gains = rng.uniform(1 - spread, 1 + spread, size=(len(images), 1, 1, 3)).astype(np.float32)
    cast = np.clip(images * gains, 0, 255).astype(np.uint8)
    sc = score_images(model, cast, desc="another light")
    before = verdicts(plain, model.threshold, model.ood_threshold)
    after = verdicts(sc, model.threshold, model.ood_threshold)
    return {
        "gain_spread": spread,
        "auc": _round(binary_metrics(y, sc.p_malignant, model.threshold)["auc"]),
        "verdicts_changed": round(float(np.mean(before != after)), 4),
        "mean_abs_change_p_malignant": round(
            float(np.mean(np.abs(sc.p_malignant - plain.p_malignant))), 4
        ),
        "unknown_rate": unknown_rate(sc, model.ood_threshold),
    }


def _round(value: float) -> float | None:
    """Rounded for the report; None (JSON null) for an undefined figure, never NaN."""
    return round(value, 4) if math.isfinite(value) else None


def _with_ci(value: float, ci: tuple[float, float]) -> dict[str, Any]:
    return {"value": _round(value), "ci95": [_round(ci[0]), _round(ci[1])]}


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None: JSON has no NaN, and a report
    carrying one is unreadable by strict parsers (and by anyone reading it as a figure)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def warn(message: str) -> None:
    print(f"skinscan evaluate: warning: {message}", file=sys.stderr)


def part_records(
    card: ModelCard,
    records: list[Record],
    split_file: Path | None,
    part: str = "test",
    allow_other_split: bool = False,
) -> tuple[list[Record], int]:
    """The records of one part of the model's split, and how many of the part's ids are not
    among them (warned about: they are left out of every figure)."""
    seed = int(card.training.get("split_seed", 0))
    split = model_split(records, split_file, seed, allow_other=allow_other_split)
    if split_file is not None and allow_other_split:
        try:
            model_split(records, split_file, seed)
        except SplitMismatchError as exc:
            warn(f"scored anyway (--allow-other-split), figures may be inflated: {exc}")
    part_ids = set(split[PARTS[part]])
    rows = [r for r in records if r.image_id in part_ids]
    if not rows:
        raise ValueError(
            f"the split's {part} part ({len(part_ids)} images) matches no image in --data"
        )
    missing = len(part_ids) - len(rows)
    if missing:
        warn(
            f"{missing} of the {len(part_ids)} images of the split's {part} part are not in "
            "--data: left out of the figures"
        )
    return rows, missing


def evaluate_ham(
    model: Engine,
    data_dir: Path,
    rows: list[Record],
    out: Path,
    n_boot: int = 1000,
    cache_dir: Path | None = None,
    part: str = "test",
) -> dict[str, Any]:
    """Figures on ``rows``, one part of the lesion-grouped split (see :func:`part_records`)."""
    card = model.card
    images = load_images(data_dir, rows, card.geometry, cache_dir)
    labels = np.array([card.classes.index(r.dx) for r in rows])
    groups = np.array([r.lesion_id for r in rows])
    sc = score_images(model, images, desc=f"HAM10000 {part}")
    mask = malignant_mask(tuple(card.classes)).numpy()
    y = mask[labels]
    thr = card.threshold
    binary = binary_metrics(y, sc.p_malignant, thr)
    probs_raw = torch.from_numpy(sc.logits).softmax(1).numpy()

    def stat(name: str):
        return lambda idx: binary_metrics(y[idx], sc.p_malignant[idx], thr)[name]

    headline = {
        name: _with_ci(binary[name], bootstrap_ci(stat(name), groups, n_boot))
        for name in ("auc", "sensitivity", "specificity", "f1", "balanced_accuracy", "precision")
    }
    if not 0 < y.sum() < len(y):
        only = "malignant" if y.all() else "benign"
        undefined = "specificity" if y.all() else "sensitivity"
        for name in ("auc", undefined):
            headline[name]["note"] = f"undefined: the {part} part holds {only} images only"
        warn(
            f"the {part} part holds {only} images only: AUC and {undefined} are undefined "
            "(null in the report)"
        )
    multi = multiclass_metrics(labels, sc.probs, card.classes)
    calibration = {
        "temperature": card.temperature,
        "ece_top_label_before": round(top_label_ece(probs_raw, labels), 4),
        "ece_top_label_after": round(top_label_ece(sc.probs, labels), 4),
        "ece_malignant_before": round(binary_ece(probs_raw[:, mask].sum(1), y), 4),
        "ece_malignant_after": round(binary_ece(sc.p_malignant, y), 4),
    }
    report = {
        "images": len(rows),
        "lesions": len(set(groups)),
        "malignant": int(y.sum()),
        "threshold": thr,
        "malignant_vs_benign": headline,
        "counts_at_threshold": {k: binary[k] for k in ("tp", "fn", "tn", "fp")},
        "accuracy_binary": round(binary["accuracy"], 4),
        **{k: v for k, v in multi.items() if k != "confusion_matrix"},
        "confusion_matrix_7": multi["confusion_matrix"],
        "calibration": calibration,
        "unknown_rate": unknown_rate(sc, model.ood_threshold),
        "light_colour": light_colour_check(model, images, y, sc),
    }
    plot_roc(
        {"malignant vs benign": (y, sc.p_malignant)},
        out / "roc_malignant.png",
        f"HAM10000 {part} (lesion-grouped), AUC {binary['auc']:.3f}",
    )
    plot_roc(
        {c: (labels == i, sc.probs[:, i]) for i, c in enumerate(card.classes)},
        out / "roc_per_class.png",
        f"HAM10000 {part}, one-vs-rest per diagnosis",
    )
    plot_reliability(
        {
            "before temperature": (probs_raw.max(1), probs_raw.argmax(1) == labels),
            f"after (T={card.temperature:.2f})": (sc.probs.max(1), sc.probs.argmax(1) == labels),
        },
        out / "reliability.png",
        f"Reliability of the top-class confidence ({part})",
    )
    plot_confusion(
        np.array(multi["confusion_matrix"]),
        card.classes,
        out / "confusion_7.png",
        f"Seven diagnoses ({part})",
    )
    c = binary
    plot_confusion(
        np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]]),
        ["benign", "malignant"],
        out / "confusion_binary.png",
        f"At the shipped threshold {thr:.3f} ({part})",
    )
    return report


def evaluate_isic2017(model: Engine, isic_dir: Path, out: Path, n_boot: int = 1000) -> dict:
    """Melanoma-vs-rest on ISIC 2017 (another source: a measure of domain shift)."""
    card = model.card
    with (Path(isic_dir) / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    images = np.empty((len(rows), card.input_height, card.input_width, 3), dtype=np.uint8)
    for i, r in enumerate(tqdm(rows, desc="decoding ISIC 2017", unit="img", leave=False)):
        path = Path(isic_dir) / r["split"] / f"{r['image_id']}.jpg"
        images[i] = fit_to_geometry(decode_image(path.read_bytes()), card.geometry)
    y = np.array([int(r["melanoma"]) for r in rows]).astype(bool)
    sc = score_images(model, images, desc="ISIC 2017")
    p_mel = sc.probs[:, card.classes.index("mel")]
    ids = np.arange(len(rows))
    auc_mel = binary_metrics(y, p_mel, 0.5)["auc"]
    auc_mal = binary_metrics(y, sc.p_malignant, 0.5)["auc"]
    at_thr = binary_metrics(y, sc.p_malignant, card.threshold)
    plot_roc(
        {"p(melanoma)": (y, p_mel), "p_malignant": (y, sc.p_malignant)},
        out / "roc_isic2017.png",
        f"ISIC 2017 melanoma vs rest, AUC {auc_mel:.3f}",
    )
    return {
        "images": len(rows),
        "melanoma": int(y.sum()),
        "auc_melanoma_p_mel": _with_ci(
            auc_mel, bootstrap_ci(lambda i: binary_metrics(y[i], p_mel[i], 0.5)["auc"], ids, n_boot)
        ),
        "auc_melanoma_p_malignant": _with_ci(
            auc_mal,
            bootstrap_ci(
                lambda i: binary_metrics(y[i], sc.p_malignant[i], 0.5)["auc"], ids, n_boot
            ),
        ),
        "melanoma_sensitivity_at_threshold": round(at_thr["sensitivity"], 4),
        "non_melanoma_flagged_malignant": round(1 - at_thr["specificity"], 4),
        "unknown_rate": unknown_rate(sc, model.ood_threshold),
    }


def check_targets(ham: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the training issue with the measured value and whether it is met."""
    mb = ham["malignant_vs_benign"]
    measured = {
        "auc": mb["auc"]["value"],
        "sensitivity": mb["sensitivity"]["value"],
        "specificity": mb["specificity"]["value"],
        "f1": mb["f1"]["value"],
        "ece_after": ham["calibration"]["ece_top_label_after"],
    }
    return {
        k: {
            "target": (f"<= {t}" if k == "ece_after" else f">= {t}" if k != "f1" else f"> {t}"),
            "measured": measured[k],
            "met": _met(k, measured[k], t),
        }
        for k, t in TARGETS.items()
    }


def _met(name: str, value: float | None, target: float) -> bool | None:
    """Whether ``value`` meets the target; None (not a guess) for an undefined figure."""
    if value is None:
        return None
    if name == "ece_after":
        return value <= target
    return value > target if name == "f1" else value >= target


def engine_setup(engine: Engine) -> dict[str, Any]:
    """How the scoring engine ran: bf16 and the BatchNorm fold move the figures by rounding."""
    return {
        "device": engine.device.type,
        "precision": "bf16" if engine.bf16 else "fp32",
        "batchnorm_folded": engine.config.fold_batchnorm,
    }


def evaluate(
    model_path: Path,
    data_dir: Path | None,
    out: Path,
    split_file: Path | None = None,
    isic_dir: Path | None = None,
    n_boot: int = 1000,
    write_card: bool = False,
    cache_dir: Path | None = None,
    part: str = "test",
    allow_other_split: bool = False,
) -> dict[str, Any]:
    """Run every evaluation asked for, write ``out/report.json`` and the plots.

    ``part`` picks the HAM10000 part (report key ``ham10000_<part>``); the targets are checked
    and the card written on the test part only. The inputs (model, data, split, ISIC folder)
    are checked before ``out`` is made; a split file made with another seed than the card's is
    refused unless ``allow_other_split``.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {tuple(PARTS)}, not {part!r}")
    if write_card and part != "test":
        raise ValueError("the model card carries test figures only: --write-card needs --part test")
    if isic_dir is not None and not (Path(isic_dir) / "labels.csv").is_file():
        raise FileNotFoundError(f"--isic2017 {isic_dir} has no labels.csv")
    records = read_ham(data_dir) if data_dir is not None else []
    # Evaluate through the serving engine, so the figures are those of what users get.
    model = Engine(load_model(model_path), EngineConfig(device="cpu"))
    rows: list[Record] = []
    missing = 0
    if data_dir is not None:
        rows, missing = part_records(model.card, records, split_file, part, allow_other_split)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"model_version": model.card.version, "engine": engine_setup(model)}
    if data_dir is not None:
        ham = evaluate_ham(model, data_dir, rows, out, n_boot, cache_dir, part)
        ham["missing_from_data"] = missing
        report[f"ham10000_{part}"] = ham
        if part == "test":
            report["targets"] = check_targets(ham)
    if isic_dir is not None:
        report["isic2017"] = evaluate_isic2017(model, isic_dir, out, n_boot)
    report = json_safe(report)
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    if write_card:
        if "targets" in report and report["targets"]["auc"]["measured"] is None:
            raise ValueError("the test part's AUC is undefined (one class): card left as it was")
        from skinscan_engine.model_card import resolve_paths

        _, card_path = resolve_paths(model_path)
        card = model.card
        card.metrics = {**card.metrics, **{k: v for k, v in report.items() if k != "model_version"}}
        card.save(card_path)
    return report
