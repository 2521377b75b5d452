"""What a run writes to resume from (``last.pt``, ``best.pt``) and what it may start from."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skinscan_engine.model import build_model
from skinscan_engine.model_card import load_model
from skinscan_engine.preprocessing import Geometry

from .config import TrainConfig

#: What ``best.pt`` keeps of an epoch's state: enough to calibrate and export, not to resume.
BEST_KEYS = ("config", "geometry", "model", "epoch", "precision", "init_lineage")

#: Files that make a folder a run's: a new run there would train on the old run's split and
#: append its epochs to the old run's log.
RUN_FILES = ("config.json", "split.json", "log.jsonl", "last.pt", "best.pt")

#: Settings a resumed run takes from the command line: where things are on this machine, and
#: the length (``epochs`` 0 and ``average_last`` 0 keep the run's own, see ``resume_point``).
RESUME_OVERRIDES = ("data", "out", "cache_dir", "device", "epochs", "average_last")

#: The flag of each setting whose flag is not ``--`` + its name with dashes.
FLAGS = {"bf16": "--no-bf16", "teachers": "--teacher", "augment": "--augment-strength"}


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


def rng_states() -> dict[str, Any]:
    """The global random generators' states, for ``last.pt``.

    Dropout draws from torch's global generator (the GPU's on a GPU), not from the batches'
    own: a resumed run that only reseeded it would repeat the first epoch's dropout masks.
    """
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`rng_states` saved (the GPUs' only on as many GPUs as saved them)."""
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_epoch(run_dir: Path, state: dict[str, Any], improved: bool) -> None:
    """``last.pt`` after every epoch; ``best.pt`` too when validation improved."""
    if improved:
        save_checkpoint(run_dir / "best.pt", {k: state[k] for k in BEST_KEYS})
    save_checkpoint(run_dir / "last.pt", state)


def check_new_run_dir(run_dir: Path) -> None:
    """Refuse to start a new run in a folder that holds one (ValueError saying what to do)."""
    found = [name for name in RUN_FILES if (Path(run_dir) / name).exists()]
    if found:
        raise ValueError(
            f"--out {run_dir} already holds a run ({', '.join(found)}): give --resume to go on "
            "with it, or another --out (or remove the folder) to start a new one"
        )


def resume_point(cfg: TrainConfig, path: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The saved state at ``path`` and the configuration the run goes on with.

    The data's and the cache's places, the device and the length come from ``cfg``; every
    other setting is the run's own. One that ``cfg`` sets to another value than its default
    and than the run's is refused (ValueError): the resumed run would not train with it.
    """
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    saved = load_checkpoint(path)
    own = TrainConfig.from_saved(saved["config"])
    default = TrainConfig(data="", out="")
    differ = [
        f.name
        for f in fields(TrainConfig)
        if f.name not in RESUME_OVERRIDES
        and getattr(cfg, f.name) != getattr(default, f.name)
        and getattr(cfg, f.name) != getattr(own, f.name)
    ]
    if differ:
        asked = ", ".join(
            f"{FLAGS.get(n, '--' + n.replace('_', '-'))} (run: {n}={getattr(own, n)!r}, "
            f"asked: {getattr(cfg, n)!r})"
            for n in differ
        )
        raise ValueError(
            f"--resume: {path} was trained with other settings than asked: {asked}. A resumed "
            "run goes on with its own: leave them out, or start a new run in another --out"
        )
    # --epochs lengthens or shortens a resumed run; without it (0) the run keeps its own.
    epochs = max(cfg.epochs or own.epochs, saved["epoch"])
    changes = {
        "data": cfg.data,
        "out": cfg.out,
        "cache_dir": cfg.cache_dir,
        "device": cfg.device,
        "epochs": epochs,
        "average_last": cfg.average_last or own.average_last,
    }
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
