"""`skinscan train`'s flags reach the run's configuration."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import pytest

from skinscan_training.augment import AugmentConfig, with_strength
from skinscan_training.cli_train import add_arguments, config_from_args
from skinscan_training.config import TrainConfig


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--data", "d", "--out", "o", *argv])


def test_label_smoothing_defaults_to_the_configs_and_can_be_turned_off() -> None:
    assert parse().label_smoothing == TrainConfig(data="d", out="o").label_smoothing
    assert parse("--label-smoothing", "0").label_smoothing == 0.0


def test_augment_strength_scales_the_runs_augmentation() -> None:
    assert config_from_args(parse()).augment == asdict(AugmentConfig())
    half = config_from_args(parse("--augment-strength", "0.5")).augment
    assert half == asdict(with_strength(AugmentConfig(), 0.5))


@pytest.mark.parametrize("value", ["-1", "2.5"])
def test_augment_strength_outside_its_range_is_a_usage_error(value: str) -> None:
    with pytest.raises(SystemExit):
        parse("--augment-strength", value)


def test_mixup_is_off_unless_asked_for() -> None:
    assert config_from_args(parse()).mixup == 0.0
    assert config_from_args(parse("--mixup", "0.2")).mixup == 0.2


def test_a_negative_mixup_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse("--mixup", "-0.2")


def test_the_optimiser_is_adamw_unless_asked_for() -> None:
    assert config_from_args(parse()).optimizer == "adamw"
    assert config_from_args(parse("--optimizer", "sgd")).optimizer == "sgd"
    with pytest.raises(SystemExit):
        parse("--optimizer", "lbfgs")
