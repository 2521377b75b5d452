"""The optimiser and learning-rate schedule of a run."""

from __future__ import annotations

import torch


def adamw(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """The trainer's optimiser; fused on CUDA (one kernel per step instead of hundreds)."""
    return torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay, fused=device.type == "cuda" or None
    )


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
