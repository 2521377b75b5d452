"""Evaluation pictures: ROC curves, reliability diagram, confusion matrix (PNG files)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.metrics import roc_curve


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """One ROC curve per entry: name -> (y_true, score)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    drawn = 0
    for name, (y, s) in curves.items():
        if 0 < np.sum(y) < len(y):  # a curve needs both classes
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=name, lw=1.8)
            drawn += 1
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1))
    if drawn:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.55, "no curve: only one class present", ha="center", color="grey")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(
    series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str, bins: int = 10
) -> None:
    """Reliability diagram: name -> (confidence, correct) for each calibration state."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for name, (conf, correct) in series.items():
        idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
        acc = [correct[idx == b].mean() if np.any(idx == b) else np.nan for b in range(bins)]
        ax.plot(centres, acc, marker="o", label=name)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    ax.set(
        xlabel="predicted confidence",
        ylabel="observed accuracy",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """Confusion matrix, rows = truth, normalised per row, with counts written in cells."""
    matrix = np.asarray(matrix)
    norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", color=colour, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training_curves(entries: list[dict], path: Path) -> None:
    """Training loss, validation loss and validation AUC per epoch (from ``log.jsonl``)."""
    epochs = [e["epoch"] for e in entries]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax1.plot(epochs, [e["train_loss"] for e in entries], marker="o", label="train (smoothed)")
    ax1.plot(epochs, [e["val_loss"] for e in entries], marker="o", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    ax1.legend(fontsize=8)
    if all("val_auc_malignant" in e for e in entries):
        ax2.plot(epochs, [e["val_auc_malignant"] for e in entries], marker="o", color="C2")
    ax2.set(xlabel="epoch", ylabel="ROC AUC", title="Validation: malignant vs benign")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_heatmap_sheet(
    examples: list[tuple[np.ndarray, np.ndarray | None, str]], path: Path, columns: int = 6
) -> None:
    """Photos with their heatmap blended in and the rough lesion outline in green.

    ``examples``: (overlay RGB uint8, lesion mask or None for no outline, caption) per panel.
    """
    rows = max(1, -(-len(examples) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 1.95 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (overlay, mask, caption) in zip(axes.flat, examples, strict=False):
        ax.imshow(overlay)
        if mask is not None:
            ax.contour(mask, levels=[0.5], colors="lime", linewidths=1.2)
        ax.set_title(caption, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    # Photos make a large PNG: 256 colours keep it small enough to commit beside the card.
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)
