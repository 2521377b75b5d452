"""Training uses bf16 only where the hardware runs it natively."""

from __future__ import annotations

import pytest
import torch

import skinscan_engine.engine as engine
from skinscan_training.config import TrainConfig
from skinscan_training.devices import wants_bf16


@pytest.mark.parametrize(
    ("asked", "native", "expected"),
    [(True, True, True), (True, False, False), (False, True, False)],
)
def test_cpu_bf16_follows_the_hardware(
    monkeypatch: pytest.MonkeyPatch, asked: bool, native: bool, expected: bool
) -> None:
    # Emulated bf16 is about 18x slower than fp32 on an AVX2-only CPU: such a run uses fp32.
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: native)
    cfg = TrainConfig(data="", out="", bf16=asked)
    assert wants_bf16(cfg, torch.device("cpu")) is expected
