import pytest

from skinscan_training.budget import EPOCH_EFFICIENCY, epochs_within


def test_epochs_fill_the_budget_without_passing_it() -> None:
    ips = 2000.0
    n = epochs_within(300, ips, 7008, 1503, max_epochs=1000)
    per_epoch = (7008 + 1503 / 3) / (ips * EPOCH_EFFICIENCY)
    assert n * per_epoch <= 300 < (n + 1) * per_epoch


def test_epochs_are_capped_and_never_zero() -> None:
    assert epochs_within(3600, 5000, 7008, 1503, max_epochs=60) == 60
    assert epochs_within(5, 10, 7008, 1503, max_epochs=60) == 1


def test_nonsense_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        epochs_within(300, 0, 7008, 1503, max_epochs=60)
