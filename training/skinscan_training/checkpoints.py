"""What a run writes to resume from (``last.pt``, ``best.pt``) and what it may start from."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from skinscan_engine.model import build_model
from skinscan_engine.model_card import load_model
from skinscan_engine.preprocessing import Geometry

from .config import TrainConfig

#: What ``best.pt`` keeps of an epoch's state: enough to calibrate and export, not to resume.
BEST_KEYS = ("config", "geometry", "model", "epoch", "precision", "init_lineage")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path``; a run killed mid-write keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, loaded onto the CPU.

    Not ``weights_only``: a checkpoint also holds the config and the optimiser's and the
    sampler's state, and only this run's own files are ever read here.
    """
    return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_geometry(ckpt: dict[str, Any]) -> Geometry:
    """The input size and normalisation a checkpoint's network was trained with."""
    cfg, norm = ckpt["config"], ckpt["geometry"]
    light = norm.get("illuminant")  # absent in checkpoints from before colour constancy
    return Geometry(
        cfg["width"],
        cfg["height"],
        tuple(norm["mean"]),  # type: ignore[arg-type]
        tuple(norm["std"]),  # type: ignore[arg-type]
        tuple(light) if light else None,  # type: ignore[arg-type]
    )


def network_from(weights: dict[str, torch.Tensor], device: torch.device) -> torch.nn.Module:
    """A ResNet-50 with ``weights``, channels-last on ``device``."""
    model = build_model()
    model.load_state_dict(weights)
    return model.to(device).to(memory_format=torch.channels_last)


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    """``config.json``: the run's settings as it goes on with them."""
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))


def save_epoch(run_dir: Path, state: dict[str, Any], improved: bool) -> None:
    """``last.pt`` after every epoch; ``best.pt`` too when validation improved."""
    if improved:
        save_checkpoint(run_dir / "best.pt", {k: state[k] for k in BEST_KEYS})
    save_checkpoint(run_dir / "last.pt", state)


def resume_point(cfg: TrainConfig, path: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The saved state at ``path`` and the configuration the run goes on with."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    saved = load_checkpoint(path)
    # --epochs lengthens or shortens a resumed run; without it (0) the run keeps its own.
    epochs = max(cfg.epochs or saved["config"]["epochs"], saved["epoch"])
    average_last = cfg.average_last or saved["config"].get("average_last", 0)
    changes = {"device": cfg.device, "epochs": epochs, "average_last": average_last}
    return TrainConfig.from_saved({**saved["config"], **changes}), saved


def rewrite_plan(run_dir: Path, cfg: TrainConfig, scheduler: Any) -> None:
    """Record a new run length in config.json and in the checkpoints already written."""
    write_config(run_dir, cfg)
    for name in ("last.pt", "best.pt"):
        path = run_dir / name
        if path.is_file():
            ckpt = load_checkpoint(path)
            ckpt["config"] = asdict(cfg)
            if "scheduler" in ckpt:
                ckpt["scheduler"] = scheduler.state_dict()
            save_checkpoint(path, ckpt)


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
