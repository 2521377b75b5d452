"""Render ``docs/model-card.md`` from the shipped model card and its evaluation report.

The figures in the document are read from the same JSON the evaluation wrote, so the card a
person reads cannot drift from the model that ships.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skinscan_engine.model import CLASS_NAMES, MALIGNANT
from skinscan_engine.model_card import ModelCard

from .config import TrainConfig
from .heatmap_check import EVEN_WITHIN
from .optim import OPTIMIZERS


def _ci(entry: dict[str, Any]) -> str:
    lo, hi = entry["ci95"]
    if entry["value"] is None or lo is None or hi is None:  # undefined: a class was absent
        return "n/a"
    return f"{entry['value']:.3f} (95% CI {lo:.3f} to {hi:.3f})"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _scored_by(engine: dict[str, Any] | None) -> str:
    if not engine:  # reports written before the engine setup was recorded
        return ""
    precision = "bfloat16" if engine["precision"] == "bf16" else "float32"
    fold = ", BatchNorm folded into the convolutions" if engine["batchnorm_folded"] else ""
    setup = f"{engine['device']}, {precision}{fold}"
    return f" Scored through the serving engine as users get it ({setup})."


def _colour(card: ModelCard) -> list[str]:
    if not card.illuminant:  # models trained on the images' colours as they are
        return []
    light = ", ".join(f"{v:.3f}" for v in card.illuminant)
    return [
        "- Colour constancy: every image is re-lit to the training part's mean light (RGB "
        f"{light}) by a shades-of-grey estimate (Minkowski p = 6) and a gain per channel, "
        "in training and in serving, so the dermatoscope's light colour does not reach the "
        "network."
    ]


def _light(ham: dict[str, Any]) -> list[str]:
    light = ham.get("light_colour")
    if not light:  # reports written before the check existed
        return []
    spread = light["gain_spread"]
    return [
        "",
        f"Under another light colour (each image's red, green and blue scaled by gains drawn "
        f"from {1 - spread:.2f} to {1 + spread:.2f}, as another dermatoscope or white balance "
        f"would show it): {_pct(light['verdicts_changed'])} of the verdicts change, "
        f"`p_malignant` moves by {light['mean_abs_change_p_malignant']:.3f} on average, ROC AUC "
        f'{light["auc"]:.3f}, {_pct(light["unknown_rate"])} answered "unknown".',
    ]


def _light_limit(card: ModelCard) -> str:
    if card.illuminant:
        return (
            "- Images are re-lit to one light colour, so the answer does not follow the "
            "dermatoscope's light; its other differences (optics, polarisation, resolution, "
            "zoom) still reach the network."
        )
    return (
        "- Colours are read as they are: a dermatoscope with another light colour or white "
        "balance can change the answer (the light-colour check above measures how often)."
    )


def _sampling(card: ModelCard) -> str:
    """How the last stage drew its batches (``balance_power`` 0 = as the data comes)."""
    power = card.training.get("config", {}).get("balance_power", TrainConfig.balance_power)
    if power == 0:
        return "batches drawn as the data comes (each image equally likely, no diagnosis favoured)"
    return f"sampling weighted towards rare diagnoses (class frequency ** -{power:g})"


def _optimiser(card: ModelCard) -> str:
    """The last stage's optimiser (cards from before ``--optimizer`` were all AdamW)."""
    return OPTIMIZERS[card.training.get("config", {}).get("optimizer", "adamw")]


def _grid(card: ModelCard) -> str:
    """The size of layer4's grid, where Grad-CAM is computed (a stride of 32 each way)."""
    return f"{-(-card.input_width // 32)}x{-(-card.input_height // 32)}"


def _heatmaps(card: ModelCard, heatmaps: dict | None, plots_dir: str) -> list[str]:
    if not heatmaps:
        return []
    return [
        "",
        "## What the heatmap shows",
        "The heatmap is Grad-CAM of the call made (of p_malignant for a malignant answer, of "
        f"1 - p_malignant for a benign one) on layer4's {_grid(card)} grid, scaled up to the "
        f"photo. {heatmaps['summary']} (`bench/heatmap_check.py`: the lesion "
        f"outline is a rough one, the dark region near the middle.) {_lean_note(heatmaps)}: "
        f"[experiments]({plots_dir}/experiments.md).",
        "",
        f"![heatmaps on validation images]({plots_dir}/heatmap_check.png)",
    ]


def _heatmap_limit(card: ModelCard, heatmaps: dict | None) -> list[str]:
    if not heatmaps:
        return []
    found = heatmaps["all"]
    share, centre = found["heatmap_share_on_lesion"], found["centre_share_on_lesion"]
    return [
        f"- The heatmap is coarse ({_grid(card)} cells) and much of it is the same for every "
        f"photo. Its hottest point is on the lesion in {found['heatmap_peak_on_lesion']:.0%} of "
        f"validation images, and {share:.0%} of its weight lies there "
        f"({'less than' if share < centre else 'at least as much as'} a fixed spot at the "
        f"centre: {centre:.0%}): read it as a rough pointer to where the network looked, not as "
        "an outline of the lesion or a reason a clinician could check."
    ]


def _lean_note(heatmaps: dict) -> str:
    """Point to the experiments that explain the lean, or that took it away."""
    pattern = heatmaps.get("pattern", {})
    lean = max(abs(pattern.get("left_minus_right", 0)), abs(pattern.get("top_minus_bottom", 0)))
    if lean >= EVEN_WITHIN:
        return "Why the maps lean, and the training change that should straighten them"
    return "Why the maps of earlier models leaned, and how the input size straightened them"


def render(
    card: ModelCard,
    report: dict[str, Any],
    plots_dir: str,
    ood: dict | None,
    heatmaps: dict | None = None,
) -> str:
    """The model card as Markdown (``ood``, ``heatmaps``: the bench checks' JSON, if run)."""
    ham = report["ham10000_test"]
    mb = ham["malignant_vs_benign"]
    cal = ham["calibration"]
    val = card.metrics.get("validation", {})
    lines = [
        f"# Model card: SkinScan ResNet-50 `{card.version}`",
        "",
        "**Not a medical device. Not a diagnosis.** SkinScan is a research and education tool "
        "that triages dermoscopic images of skin lesions; every result must be read by a "
        "clinician.",
        "",
        "## Model",
        f"- torchvision ResNet-50, trained from random initialisation (no ImageNet weights) on "
        f"HAM10000, input {card.input_width}x{card.input_height} px, seven outputs "
        f"({', '.join(card.classes)}).",
        *_colour(card),
        f"- `p_malignant = p(mel) + p(bcc) + p(akiec)` after temperature scaling "
        f"(T = {card.temperature:.3f}, fitted on validation).",
        f"- Decision threshold on `p_malignant`: **{card.threshold:.3f}**, chosen on validation "
        f"for {card.threshold_aim}. At or above it the verdict is *malignant*.",
        '- "Unknown" gate: Mahalanobis distance to the nearest diagnosis centre (shared '
        f"covariance) of {card.ood.get('features', 'pooled features')}, fitted on the "
        f"{card.ood.get('fitted_on', 'training part')}"
        + (
            "; the distances of each feature space, scaled by their spread on validation, are "
            "summed"
            if len(card.ood.get("parts", [])) > 1
            else ""
        )
        + f". Threshold set so that {_pct(card.ood.get('max_reject_in_distribution'))} of "
        f"validation images at most are rejected (measured: {_pct(card.ood.get('val_rejected'))}).",
        "- Weights: fp16 safetensors; the card (`.json`) beside them carries everything inference "
        "needs.",
        "",
        "## Data and licence",
        "- HAM10000 (Tschandl, Rosendahl, Kittler, *Scientific Data* 5, 180161, 2018): 10,015 "
        "dermoscopic images of 7,470 lesions, used at 200x150 px. Licence CC BY-NC 4.0: the model "
        "is for **non-commercial** research and education only.",
        "- Split 70/15/15 into train/validation/test **grouped by `lesion_id`** (no lesion in two "
        f"parts) and stratified by diagnosis, seed {card.training.get('split_seed', 0)}. The test "
        "part was used only by `skinscan evaluate`.",
        "- External check: ISIC 2017 (2,150 images, another source; melanoma labels only), never "
        "used for training or tuning.",
        "",
        "## Training",
        *_stages(card),
        "- Every stage: a one-cycle schedule, label smoothing, dermoscopy "
        "augmentation (flips, 90° and small rotations, scale, colour jitter), channels-last; "
        "one checkpoint per epoch, the epoch with the best validation AUC kept. Last stage: "
        f"{_optimiser(card)}, {_sampling(card)}; its configuration: "
        f"`{json.dumps(card.training.get('config', {}))}`.",
        f"- Every run made so far, including those not shipped: [experiments]({plots_dir}/"
        "experiments.md).",
        "",
        f"![training curves]({plots_dir}/training_curves.png)",
        "",
        "## Results on the lesion-grouped test part",
        f"{ham['images']} images of {ham['lesions']} lesions, {ham['malignant']} malignant."
        + _scored_by(report.get("engine")),
        "",
        "| metric (malignant vs benign) | value |",
        "|---|---|",
        f"| ROC AUC | {_ci(mb['auc'])} |",
        f"| sensitivity at the threshold | {_ci(mb['sensitivity'])} |",
        f"| specificity at the threshold | {_ci(mb['specificity'])} |",
        f"| precision | {_ci(mb['precision'])} |",
        f"| F1 | {_ci(mb['f1'])} |",
        f"| balanced accuracy | {_ci(mb['balanced_accuracy'])} |",
        f"| seven-class accuracy | {ham['accuracy_7']:.3f} |",
        f"| seven-class balanced accuracy | {ham['balanced_accuracy_7']:.3f} |",
        f"| ECE, top class, before → after temperature | {cal['ece_top_label_before']:.3f} → "
        f"{cal['ece_top_label_after']:.3f} |",
        f"| ECE, p_malignant, before → after temperature | {cal['ece_malignant_before']:.3f} → "
        f"{cal['ece_malignant_after']:.3f} |",
        f'| answered "unknown" | {_pct(ham.get("unknown_rate"))} |',
        "",
        "Intervals: 1,000 bootstrap resamples of lesions. One-vs-rest AUC per diagnosis: "
        + ", ".join(f"{c} {v:.3f}" for c, v in ham["auc_one_vs_rest"].items())
        + ".",
        *_light(ham),
        "",
        "| target (training issue) | measured | met |",
        "|---|---|---|",
        *[
            f"| {k} {t['target']} | {t['measured']:.3f} | {'yes' if t['met'] else '**no**'} |"
            for k, t in report.get("targets", {}).items()
        ],
        "",
        f"![ROC]({plots_dir}/roc_malignant.png) ![per class]({plots_dir}/roc_per_class.png)",
        "",
        f"![reliability]({plots_dir}/reliability.png) "
        f"![confusion]({plots_dir}/confusion_binary.png) "
        f"![confusion 7]({plots_dir}/confusion_7.png)",
        "",
        "Validation (used for the temperature and threshold): "
        + ", ".join(f"{k} {v}" for k, v in val.items())
        + ".",
    ]
    if "isic2017" in report:
        isic = report["isic2017"]
        lines += [
            "",
            "## External validation: ISIC 2017 (domain shift)",
            f"{isic['images']} images, {isic['melanoma']} melanomas. Melanoma-vs-rest ROC AUC "
            f"with p(mel): {_ci(isic['auc_melanoma_p_mel'])}; with p_malignant: "
            f"{_ci(isic['auc_melanoma_p_malignant'])}. At the shipped threshold "
            f"{_pct(isic['melanoma_sensitivity_at_threshold'])} of melanomas are flagged and "
            f"{_pct(isic['non_melanoma_flagged_malignant'])} of the other lesions too; "
            f'{_pct(isic.get("unknown_rate"))} are answered "unknown". No target: this measures '
            "how much the figures above drop on images from another clinic and camera.",
            "",
            f"![ISIC 2017 ROC]({plots_dir}/roc_isic2017.png)",
        ]
    if ood:
        lines += [
            "",
            '## The "unknown" gate on photos that are not skin lesions',
            f"{ood['summary']}",
        ]
    lines += _heatmaps(card, heatmaps, plots_dir)
    lines += [
        "",
        "## Limits",
        "- Trained and tested on **dermoscopic** images (a dermatoscope pressed on the skin). "
        "Ordinary phone photos of skin are a different kind of image: expect worse figures or "
        '"unknown" answers.',
        "- HAM10000 comes from two centres (Vienna, Queensland) and mostly fair skin: darker skin "
        "types are under-represented, and the model's figures there are unknown.",
        "- Seven diagnoses only; other lesions (e.g. squamous cell carcinoma beyond akiec, "
        "Merkel cell carcinoma, acral or mucosal lesions) are outside what it learned.",
        "- Trained from scratch (no pretrained weights) on the HAM10000 training part alone. "
        "Every run from scratch so far but one cut to 10 epochs (inputs from 64x48 to the "
        "native 200x150, twice the epochs, distillation, a malignant-vs-benign loss term, colour "
        "constancy, another class mix in the batches, mixup, SGD) scored between 0.888 and 0.910 "
        "AUC on validation ([experiments](model/experiments.md)): the limit looks like what a "
        "network learns from scratch from so few images; a pretrained backbone would likely do "
        "better.",
        _light_limit(card),
        '- The "unknown" gate catches images far from the training set; it is not a guarantee: '
        "a poor photo of a lesion can still get a confident answer.",
        *_heatmap_limit(card, heatmaps),
        f"- Malignant means {', '.join(CLASS_NAMES[c] for c in sorted(MALIGNANT))}.",
        "- Not a medical device, not a diagnosis, not for clinical decisions.",
        "",
    ]
    return "\n".join(lines)


def _stages(card: ModelCard) -> list[str]:
    """One line per training stage, oldest first (a warm start names the model it began from)."""
    stages = []
    stage: dict[str, Any] | None = {
        "version": card.version,
        "input": f"{card.input_width}x{card.input_height}",
        "schedule_epochs": card.training.get("config", {}).get("epochs"),
        **card.training,
    }
    while stage:
        stages.append(stage)
        stage = stage.get("initialised_from")
    lines = []
    for n, st in enumerate(reversed(stages), start=1):
        start = "random initialisation" if n == 1 else f"stage {n - 1}'s weights (warm start)"
        precision = {"bf16": "bfloat16 autocast", "fp32": "fp32"}.get(
            st.get("precision") or "bf16", str(st.get("precision"))
        )
        schedule = st.get("schedule_epochs")
        of = f" of a {schedule}-epoch schedule" if schedule else ""
        lines.append(
            f"- Stage {n}: weights from epoch {st.get('epochs')}{of} at {st['input']} px, "
            f"from {start}, {precision}."
        )
    return lines


def _optional_json(path: Path | None) -> dict | None:
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None


def write(
    card_path: Path,
    report_path: Path,
    out: Path,
    plots_dir: str,
    ood_path: Path | None,
    heatmap_path: Path | None = None,
) -> None:
    """Render the model card to ``out`` from the card, the report and the bench checks' JSON."""
    card = ModelCard.load(card_path)
    report = json.loads(Path(report_path).read_text())
    heatmaps = _optional_json(heatmap_path)
    Path(out).write_text(render(card, report, plots_dir, _optional_json(ood_path), heatmaps))
