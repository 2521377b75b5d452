"""`skinscan train`'s flags reach the run's configuration."""

from __future__ import annotations

import argparse

from skinscan_training.cli_train import add_arguments
from skinscan_training.config import TrainConfig


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--data", "d", "--out", "o", *argv])


def test_label_smoothing_defaults_to_the_configs_and_can_be_turned_off() -> None:
    assert parse().label_smoothing == TrainConfig(data="d", out="o").label_smoothing
    assert parse("--label-smoothing", "0").label_smoothing == 0.0
