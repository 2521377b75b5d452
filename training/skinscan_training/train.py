"""The training loop: balanced sampling, augmentation, a checkpoint and a log line per epoch.

Everything a run produces lands in its folder: ``split.json``, ``config.json``,
``log.jsonl`` (one line per epoch), ``last.pt`` (resumable), ``best.pt`` (by validation AUC),
and with ``average_last`` the last epochs' weights and their mean, ``averaged.pt``.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from skinscan_engine.model import build_model
from skinscan_engine.preprocessing import Geometry

from .augment import AugmentConfig
from .averaging import (
    average_last_epochs,
    averaging_window,
    epoch_weights_path,
    keep_epoch_weights,
)
from .budget import epochs_that_fit
from .checkpoints import (
    check_new_run_dir,
    init_from,
    restore_rng_states,
    resume_point,
    rewrite_plan,
    rng_states,
    save_epoch,
    write_config,
)
from .config import TrainConfig
from .devices import autocast, pick_device, wants_bf16
from .distill import check_teachers, training_targets
from .losses import training_loss
from .optim import make_optimizer, one_cycle
from .run_data import (
    channel_stats,
    image_pool,
    mean_illuminant,
    prepare_data,
    sampling_weights,
    training_batches,
)
from .validation import predict_logits, summarize


def train_epoch(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    label_smoothing: float,
    device: torch.device,
    bf16: bool,
    desc: str,
    binary_weight: float = 0.0,
) -> float:
    """One pass over ``batches`` with a progress bar; returns the smoothed training loss."""
    model.train()
    bar = tqdm(batches, total=steps, desc=desc, unit="batch")
    running = torch.zeros((), device=device)
    for step, (x, y) in enumerate(bar):
        with autocast(device, bf16):
            loss = training_loss(model(x), y, label_smoothing, binary_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running = 0.98 * running + 0.02 * loss.detach() if step else loss.detach().float()
        # Reading the loss waits for the device; on a GPU, doing it every step would idle it.
        if device.type == "cpu" or step % 25 == 0 or step == steps - 1:
            loss_text, lr_text = f"{running.item():.3f}", f"{scheduler.get_last_lr()[0]:.2e}"
            bar.set_postfix(loss=loss_text, lr=lr_text, refresh=False)
    return running.item()


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) a run; returns the checkpoint to export.

    That is ``best.pt``, or with ``cfg.average_last`` the mean of the last epochs,
    ``averaged.pt``.
    """
    started = time.perf_counter()
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Any] | None = None
    init_state: dict[str, torch.Tensor] | None = None
    lineage: dict[str, Any] | None = None
    if resume:
        cfg, saved = resume_point(cfg, run_dir / "last.pt")
        lineage = saved.get("init_lineage")
    else:
        # Its split.json and log.jsonl would be this run's: it would train on another split.
        check_new_run_dir(run_dir)
        if cfg.init:
            # Read the warm-start weights before the slow data preparation: a bad path fails
            # at once.
            init_state, lineage = init_from(Path(cfg.init))
    check_teachers(cfg)
    if cfg.binary_weight < 0:
        raise ValueError(f"--binary-weight must be at least 0, got {cfg.binary_weight}")
    if cfg.mixup < 0:
        raise ValueError(f"--mixup must be at least 0 (0 = off), got {cfg.mixup}")
    if not 0 <= cfg.label_smoothing < 1:
        raise ValueError(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}")
    write_config(run_dir, cfg)

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    bf16 = wants_bf16(cfg, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    data = prepare_data(cfg, run_dir)
    train_idx, val_idx = data.index["train"], data.index["val"]
    light = mean_illuminant(data.images[train_idx]) if cfg.colour_constancy else None
    mean, std = channel_stats(data.images[train_idx], light)
    geometry = Geometry(cfg.width, cfg.height, tuple(mean), tuple(std), light)  # type: ignore[arg-type]
    targets = training_targets(cfg, data, device, bf16)

    model = build_model()
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, device)
    steps = max(1, (cfg.samples_per_epoch or len(train_idx)) // cfg.batch_size)
    scheduler = one_cycle(optimizer, cfg.lr, cfg.epochs, steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    epoch, best_auc = 0, -math.inf
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        epoch, best_auc = saved["epoch"], saved["best_auc"]
        if saved["config"]["epochs"] == cfg.epochs:
            scheduler.load_state_dict(saved["scheduler"])
        else:
            # The run was extended (or shortened): continue on the schedule of the new length.
            scheduler = one_cycle(optimizer, cfg.lr, cfg.epochs, steps, epoch * steps)
        # Last, once building the network has drawn its initial weights from them.
        if "rng" in saved:  # absent in checkpoints from before it was saved
            restore_rng_states(saved["rng"])

    weights = torch.from_numpy(sampling_weights(data.labels[train_idx], cfg.balance_power))
    augment_cfg = AugmentConfig(**cfg.augment)
    pool = image_pool(data.images, device)
    budgeted = bool(cfg.time_budget) and saved is None  # a resumed run keeps its length
    most_epochs, epoch_s = cfg.epochs, 0.0
    with (run_dir / "log.jsonl").open("a") as log:
        while epoch < cfg.epochs:
            if budgeted and epoch in (1, 2):
                # Planned from whole epochs, checkpoint writes included: after the first (which
                # also pays for warm-up, so it errs short), then again after the second.
                left = cfg.time_budget - (time.perf_counter() - started)
                fitted = epochs_that_fit(left, epoch_s, epoch, most_epochs)
                if fitted != cfg.epochs:
                    tqdm.write(f"time budget: {fitted} epochs fit (at most {most_epochs})")
                    cfg = replace(cfg, epochs=fitted)
                    scheduler = one_cycle(optimizer, cfg.lr, cfg.epochs, steps, epoch * steps)
                    rewrite_plan(run_dir, cfg, scheduler)
                if epoch >= cfg.epochs:
                    break
            t0 = time.perf_counter()
            batches = training_batches(
                pool,
                targets,
                train_idx,
                weights,
                steps,
                cfg.batch_size,
                augment_cfg,
                geometry,
                gen,
                cfg.mixup,
            )
            train_loss = train_epoch(
                model,
                batches,
                steps,
                optimizer,
                scheduler,
                cfg.label_smoothing,
                device,
                bf16,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                binary_weight=cfg.binary_weight,
            )
            val_logits = predict_logits(model, data.images[val_idx], geometry, device, bf16)
            val = summarize(val_logits, data.labels[val_idx])
            auc = val.get("auc_malignant", -val["loss"])
            improved = auc > best_auc
            best_auc = max(best_auc, auc)
            entry = {
                "epoch": epoch + 1,
                "train_loss": round(train_loss, 4),
                **{f"val_{k}": round(v, 4) for k, v in val.items()},
                "lr": scheduler.get_last_lr()[0],
                "seconds": round(time.perf_counter() - t0, 1),
                "best": improved,
            }
            log.write(json.dumps(entry) + "\n")
            log.flush()
            tqdm.write(json.dumps(entry))
            state = {
                "config": asdict(cfg),
                "geometry": {"mean": mean, "std": std, "illuminant": light},
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": gen.get_state(),
                "rng": rng_states(),
                "epoch": epoch + 1,
                "best_auc": best_auc,
                "precision": "bf16" if bf16 else "fp32",
                "init_lineage": lineage,
            }
            save_epoch(run_dir, state, improved)
            # Until the budget's plan is final (after the second epoch) the run may end after
            # any epoch, which then falls in the averaging window: keep the first two anyway.
            unplanned = budgeted and epoch + 1 <= 2
            window = averaging_window(cfg.epochs, cfg.average_last)
            if cfg.average_last and (unplanned or epoch + 1 in window):
                keep_epoch_weights(run_dir, epoch + 1, model)
            epoch_s = time.perf_counter() - t0
            epoch += 1
    if cfg.average_last:
        if budgeted:  # drop what was kept for a plan the budget did not choose
            for early in set(range(1, 3)) - set(averaging_window(cfg.epochs, cfg.average_last)):
                epoch_weights_path(run_dir, early).unlink(missing_ok=True)
        return average_last_epochs(run_dir, cfg.average_last, data)
    return run_dir / "best.pt"
