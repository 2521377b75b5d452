"""The training loop: lesion-grouped split, balanced sampling, augmentation, checkpoints.

Everything a run produces lands in its folder: ``split.json``, ``config.json``,
``log.jsonl`` (one line per epoch), ``last.pt`` (resumable), ``best.pt`` (by validation AUC).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from tqdm import tqdm

from skinscan_engine.engine import use_bf16
from skinscan_engine.model import CLASSES, build_model, forward_with_features, malignant_mask
from skinscan_engine.model_card import load_model
from skinscan_engine.preprocessing import Geometry, standardize, to_batch

from .augment import AugmentConfig, augment
from .batches import model_inputs
from .budget import epochs_that_fit
from .dataset import Record, load_images, read_metadata
from .split import grouped_split, load_split, save_split


@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    width: int = 128
    height: int = 96
    samples_per_epoch: int = 0  # 0 = size of the training part
    balance_power: float = 0.5  # sampling weight = class frequency ** -balance_power
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    cache_dir: str = ""
    limit: int = 0  # use only the first N images (tests, smoke runs)
    init: str = ""  # a shipped model whose weights start the run (warm start), or "" for scratch
    # Seconds the training may take, data preparation included, calibration and export not
    # (0 = no limit). After its first and second epochs a fresh run sets ``epochs`` (at most
    # the configured number) to what fits, and its learning-rate schedule with it, so that
    # the schedule still ends where it should.
    time_budget: float = 0.0
    augment: dict[str, Any] = field(default_factory=lambda: asdict(AugmentConfig()))


@dataclass
class Data:
    records: list[Record]
    images: np.ndarray
    labels: np.ndarray
    index: dict[str, np.ndarray]  # part -> row indices into images


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast on the CPU (AMX / AVX512-BF16) or CUDA; a no-op when disabled."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def wants_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 only where the hardware runs it natively.

    On a CPU without AVX512-BF16 or AMX, bf16 is emulated and a ResNet-50 step is about 18x
    slower than in fp32 (measured on an AVX2-only EPYC), so such a run falls back to fp32.
    """
    return cfg.bf16 and use_bf16("auto", device)


def prepare_data(cfg: TrainConfig, run_dir: Path) -> Data:
    """Read metadata, make (or reuse) the grouped split, decode images once into memory."""
    records = read_metadata(Path(cfg.data))
    if cfg.limit:
        records = records[: cfg.limit]
    split_file = run_dir / "split.json"
    if split_file.is_file():
        split = load_split(split_file)
    else:
        split = grouped_split(records, seed=cfg.seed)
        save_split(split, split_file, cfg.seed)
    geometry = Geometry(width=cfg.width, height=cfg.height)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else run_dir / "cache"
    images = load_images(Path(cfg.data), records, geometry, cache)
    row = {r.image_id: i for i, r in enumerate(records)}
    index = {p: np.array([row[i] for i in ids], dtype=np.int64) for p, ids in split.items()}
    labels = np.array([r.label for r in records], dtype=np.int64)
    return Data(records, images, labels, index)


def channel_stats(images: np.ndarray, chunk: int = 256) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0, 1] (the model's normalisation).

    Summed a chunk of images at a time: the whole training part in float64 at once would take
    about 15 GB at 200x150.
    """
    total, squares, n = np.zeros(3), np.zeros(3), 0
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].reshape(-1, 3).astype(np.float64) / 255.0
        total += x.sum(0)
        squares += np.square(x).sum(0)
        n += len(x)
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
    return mean.round(4).tolist(), std.round(4).tolist()


def sampling_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-image weights so that rare diagnoses are drawn more often (power 1 = fully balanced)."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    w = np.where(counts > 0, counts, 1.0) ** -power
    weights = w[labels]
    return weights / weights.sum()


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    images: np.ndarray,
    geometry: Geometry,
    device: torch.device,
    bf16: bool,
    batch_size: int = 128,
    progress: str | None = None,
) -> torch.Tensor:
    """Logits for uint8 images, in eval mode; fp32 on the CPU."""
    model.eval()
    logits = []
    for x in model_inputs(images, geometry, device, batch_size, progress):
        with autocast(device, bf16):
            _, _, out = forward_with_features(model, x)
        logits.append(out.float().cpu())
    return torch.cat(logits)


def summarize(logits: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """Validation figures used to pick the best epoch."""
    probs = logits.softmax(1)
    p_mal = probs[:, malignant_mask()].sum(1).numpy()
    y_mal = malignant_mask().numpy()[labels]
    out = {
        "loss": float(F.cross_entropy(logits, torch.from_numpy(labels))),
        "balanced_accuracy_7": float(balanced_accuracy_score(labels, probs.argmax(1).numpy())),
    }
    if 0 < y_mal.sum() < len(y_mal):
        out["auc_malignant"] = float(roc_auc_score(y_mal, p_mal))
    return out


def image_pool(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """All decoded images as one N x 3 x H x W uint8 tensor on the training device.

    On a GPU the whole set (under 1 GB at 200x150) moves there once, and batches are gathered
    and augmented there: on the CPU, augmenting one batch of 32 at 200x150 takes about 50 ms
    (two cores), as long as a whole GPU training step. On the CPU this is a view, not a copy.
    """
    return to_batch(images).to(device)


def init_from(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The network weights (fp32) of a shipped model to start a run from, and its lineage.

    A warm start lets a run go on from a model that was already trained on the same split
    (for example at a larger input size), instead of spending its epochs relearning from
    scratch. The "unknown" gate's statistics are not part of the network and are left out.
    The lineage (version, input size, epochs, precision, and what *it* started from) goes
    into the checkpoints, so the exported card can name every stage even if the earlier
    model's files have moved on since.
    """
    loaded = load_model(path)
    card = loaded.card
    lineage = {
        "version": card.version,
        "input": f"{card.input_width}x{card.input_height}",
        "epochs": card.training.get("epochs"),
        "schedule_epochs": card.training.get("config", {}).get("epochs"),
        "precision": card.training.get("precision", "bf16"),
        "initialised_from": card.training.get("initialised_from"),
    }
    return loaded.network.state_dict(), lineage


def adamw(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """The trainer's optimiser; fused on CUDA (one kernel per step instead of hundreds)."""
    return torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay, fused=device.type == "cuda" or None
    )


def one_cycle(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int, done_steps: int = 0
) -> torch.optim.lr_scheduler.OneCycleLR:
    """The learning-rate schedule of a ``cfg.epochs`` run, ``done_steps`` into it."""
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg.lr,
        total_steps=cfg.epochs * steps_per_epoch,
        pct_start=0.15,
        last_epoch=done_steps - 1,
    )


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a run killed mid-write keeps the previous checkpoint


def _rewrite_plan(run_dir: Path, cfg: TrainConfig, scheduler: Any) -> None:
    """Record a new run length in config.json and in the checkpoints already written."""
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    for name in ("last.pt", "best.pt"):
        path = run_dir / name
        if path.is_file():
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            ckpt["config"] = asdict(cfg)
            if "scheduler" in ckpt:
                ckpt["scheduler"] = scheduler.state_dict()
            _save_checkpoint(path, ckpt)


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) a run; returns the path of the best checkpoint."""
    started = time.perf_counter()
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    last_ckpt, best_ckpt = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_ckpt.is_file():
        saved = torch.load(last_ckpt, map_location="cpu", weights_only=False)
        # --epochs lengthens or shortens a resumed run; without it (0) the run keeps its own.
        epochs = max(cfg.epochs or saved["config"]["epochs"], saved["epoch"])
        cfg = TrainConfig(**{**saved["config"], "device": cfg.device, "epochs": epochs})
    elif resume:
        raise FileNotFoundError(f"--resume: no checkpoint at {last_ckpt}")
    else:
        saved = None
    init_state: dict[str, torch.Tensor] | None = None
    if saved is not None:
        lineage = saved.get("init_lineage")
    elif cfg.init:
        # Read the warm-start weights before the slow data preparation: a bad path fails at once.
        init_state, lineage = init_from(Path(cfg.init))
    else:
        lineage = None
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    bf16 = wants_bf16(cfg, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    data = prepare_data(cfg, run_dir)
    train_idx, val_idx = data.index["train"], data.index["val"]
    mean, std = channel_stats(data.images[train_idx])
    geometry = Geometry(cfg.width, cfg.height, tuple(mean), tuple(std))  # type: ignore[arg-type]

    model = build_model()
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device).to(memory_format=torch.channels_last)
    optimizer = adamw(model, cfg.lr, cfg.weight_decay, device)
    per_epoch = cfg.samples_per_epoch or len(train_idx)
    steps_per_epoch = max(1, per_epoch // cfg.batch_size)
    scheduler = one_cycle(optimizer, cfg, steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, best_auc = 0, -math.inf
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        start_epoch, best_auc = saved["epoch"], saved["best_auc"]
        if saved["config"]["epochs"] == cfg.epochs:
            scheduler.load_state_dict(saved["scheduler"])
        else:
            # The run was extended (or shortened): continue on the schedule of the new length.
            scheduler = one_cycle(optimizer, cfg, steps_per_epoch, start_epoch * steps_per_epoch)

    weights = torch.from_numpy(sampling_weights(data.labels[train_idx], cfg.balance_power))
    aug_cfg = AugmentConfig(**cfg.augment)
    pool = image_pool(data.images, device)
    log = (run_dir / "log.jsonl").open("a")
    budgeted = bool(cfg.time_budget) and saved is None  # a resumed run keeps its length
    most_epochs, epoch_s = cfg.epochs, 0.0
    epoch = start_epoch
    while epoch < cfg.epochs:
        if budgeted and epoch in (1, 2):
            # Planned from whole epochs, checkpoint writes included: after the first (which
            # also pays for warm-up, so it errs short), then again after the second.
            left = cfg.time_budget - (time.perf_counter() - started)
            fitted = epochs_that_fit(left, epoch_s, epoch, most_epochs)
            if fitted != cfg.epochs:
                tqdm.write(f"time budget: {fitted} epochs fit (at most {most_epochs})")
                cfg = replace(cfg, epochs=fitted)
                scheduler = one_cycle(optimizer, cfg, steps_per_epoch, epoch * steps_per_epoch)
                _rewrite_plan(run_dir, cfg, scheduler)
            if epoch >= cfg.epochs:
                break
        model.train()
        t0 = time.perf_counter()
        draws = torch.multinomial(weights, steps_per_epoch * cfg.batch_size, True, generator=gen)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        running = torch.zeros((), device=device)
        for step in bar:
            rows = train_idx[draws[step * cfg.batch_size : (step + 1) * cfg.batch_size].numpy()]
            # Copies to the device need not wait for it (see augment).
            picked = torch.from_numpy(rows).to(device, non_blocking=True)
            x = augment(pool[picked].float().div_(255.0), aug_cfg, gen)
            x = standardize(x, geometry)
            y = torch.from_numpy(data.labels[rows]).to(device, non_blocking=True)
            with autocast(device, bf16):
                loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running = 0.98 * running + 0.02 * loss.detach() if step else loss.detach().float()
            # Reading the loss waits for the device; on a GPU, doing it every step would idle it.
            if device.type == "cpu" or step % 25 == 0 or step == steps_per_epoch - 1:
                loss_text, lr_text = f"{running.item():.3f}", f"{scheduler.get_last_lr()[0]:.2e}"
                bar.set_postfix(loss=loss_text, lr=lr_text, refresh=False)
        val_logits = predict_logits(model, data.images[val_idx], geometry, device, bf16)
        val = summarize(val_logits, data.labels[val_idx])
        auc = val.get("auc_malignant", -val["loss"])
        improved = auc > best_auc
        best_auc = max(best_auc, auc)
        entry = {
            "epoch": epoch + 1,
            "train_loss": round(running.item(), 4),
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
            "geometry": {"mean": mean, "std": std},
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": gen.get_state(),
            "epoch": epoch + 1,
            "best_auc": best_auc,
            "precision": "bf16" if bf16 else "fp32",
            "init_lineage": lineage,
        }
        if improved:
            _save_checkpoint(
                best_ckpt,
                {
                    k: state[k]
                    for k in ("config", "geometry", "model", "epoch", "precision", "init_lineage")
                },
            )
        _save_checkpoint(last_ckpt, state)
        epoch_s = time.perf_counter() - t0
        epoch += 1
    log.close()
    return best_ckpt
