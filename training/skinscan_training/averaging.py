"""One model from a run's last epochs: the mean of their weights (weight averaging).

From one epoch to the next the validation AUC moves by about +-0.01 even while the learning
rate falls, so "the best epoch" is partly the luckiest draw of that noise. The mean of the
last few epochs' weights is one smoother model at no cost in inference. BatchNorm's running
statistics are not averaged: they belong to the weights that produced them, so they are
measured again for the mean weights, on batches of the training part drawn as training draws
them.

Kept weights live in ``RUN_DIR/epochs/eNNN.pt`` (the network's state only); the mean goes to
``RUN_DIR/averaged.pt`` in the format of ``best.pt`` and its validation figures to
``RUN_DIR/averaged.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from .augment import AugmentConfig
from .checkpoints import (
    BEST_KEYS,
    checkpoint_geometry,
    load_checkpoint,
    network_from,
    save_checkpoint,
)
from .config import TrainConfig
from .devices import autocast, pick_device, wants_bf16
from .run_data import Data, image_pool, prepare_data, sampling_weights, training_batches
from .validation import predict_logits, summarize


def epoch_weights_path(run_dir: Path, epoch: int) -> Path:
    """Where the network weights of ``epoch`` are kept for averaging."""
    return Path(run_dir) / "epochs" / f"e{epoch:03d}.pt"


def keep_epoch_weights(run_dir: Path, epoch: int, model: torch.nn.Module) -> None:
    """Save the network's weights after ``epoch`` (on the CPU, fp32)."""
    path = epoch_weights_path(run_dir, epoch)
    path.parent.mkdir(exist_ok=True)
    save_checkpoint(path, {k: v.detach().cpu() for k, v in model.state_dict().items()})


def averaging_window(epochs: int, last: int) -> range:
    """The epochs (1-based) whose weights are averaged: the last ``last`` of ``epochs``."""
    return range(max(1, epochs - last + 1), epochs + 1)


def mean_weights(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors; other tensors from the last state.

    Integer tensors (BatchNorm's ``num_batches_tracked``) are counts, not weights.
    """
    if not states:
        raise ValueError("no weights to average")
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


@torch.no_grad()
def refresh_batchnorm(model: torch.nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Replace BatchNorm's running statistics with their plain mean over ``batches``.

    ``batches`` are model inputs (autocast, if any, is the caller's).
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative mean over all batches, not an exponential one
    model.train()
    for x in batches:
        model(x)
    for bn in norms:
        bn.momentum = 0.1
    model.eval()


def average_last_epochs(run_dir: Path, last: int, data: Data | None = None) -> Path:
    """Average the kept weights of the run's last ``last`` epochs into ``averaged.pt``.

    Reads ``last.pt`` for the run's length and settings, and the run's images unless the
    training loop passes its own ``data``; returns the new checkpoint's path.
    """
    run_dir = Path(run_dir)
    final = load_checkpoint(run_dir / "last.pt")
    cfg = TrainConfig.from_saved(final["config"])
    window = averaging_window(final["epoch"], last)
    missing = [e for e in window if not epoch_weights_path(run_dir, e).is_file()]
    if missing:
        raise FileNotFoundError(
            f"weights of epoch(s) {missing} are not in {run_dir / 'epochs'}: a run keeps an "
            "epoch's weights only when it trains that epoch with an --average-last window that "
            f"covers it; average fewer epochs than {last} (a smaller --average-last)"
        )
    weights = mean_weights([load_checkpoint(epoch_weights_path(run_dir, e)) for e in window])

    device = pick_device(cfg.device)
    bf16 = wants_bf16(cfg, device)
    geometry = checkpoint_geometry(final)
    model = network_from(weights, device)
    if data is None:
        data = prepare_data(cfg, run_dir)
    # The statistics are measured on batches drawn as training draws them (class-balanced,
    # augmented): the network learnt under those. Plain training images (two thirds naevi)
    # shift them, and cost the last epoch alone 0.02 validation AUC in a probe.
    tr = data.index["train"]
    batches = training_batches(
        image_pool(data.images, device),
        data.labels,
        tr,
        torch.from_numpy(sampling_weights(data.labels[tr], cfg.balance_power)),
        max(1, len(tr) // cfg.batch_size),
        cfg.batch_size,
        AugmentConfig(**cfg.augment),
        geometry,
        torch.Generator().manual_seed(cfg.seed),
        cfg.mixup,
    )
    with autocast(device, bf16):
        refresh_batchnorm(model, (x for x, _ in tqdm(batches, desc="batchnorm", leave=False)))
    va = data.index["val"]
    val = summarize(predict_logits(model, data.images[va], geometry, device, bf16), data.labels[va])

    state = {k: final[k] for k in BEST_KEYS if k in final}
    state["model"] = {k: v.cpu() for k, v in model.state_dict().items()}
    state["averaged_epochs"] = [window.start, window.stop - 1]
    path = run_dir / "averaged.pt"
    save_checkpoint(path, state)
    figures = {f"val_{k}": v for k, v in val.items()}
    summary = {"averaged_epochs": state["averaged_epochs"], **figures}
    (run_dir / "averaged.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return path
