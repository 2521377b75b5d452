"""The optimiser and learning-rate schedule of a run."""

from __future__ import annotations

import torch

# Each optimiser a run can name, and how the model card describes it.
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD with Nesterov momentum"}


def make_optimizer(
    model: torch.nn.Module, name: str, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    """The trainer's optimiser, by name; fused on CUDA (one kernel per step instead of hundreds).

    ``sgd`` is SGD with Nesterov momentum (0.9 until the one-cycle schedule takes over and
    cycles it from 0.95 to 0.85 and back, as it cycles AdamW's first beta).
    """
    fused = device.type == "cuda" or None
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=weight_decay,
            fused=fused,
        )
    raise ValueError(f"unknown optimiser {name!r}; expected one of {', '.join(OPTIMIZERS)}")


def one_cycle(
    optimizer: torch.optim.Optimizer,
    max_lr: float,
    epochs: int,
    steps_per_epoch: int,
    done_steps: int = 0,
) -> torch.optim.lr_scheduler.OneCycleLR:
    """The learning-rate schedule of an ``epochs`` run, ``done_steps`` into it."""
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=epochs * steps_per_epoch,
        pct_start=0.15,
        last_epoch=done_steps - 1,
    )
