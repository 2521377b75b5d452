import pytest

from skinscan_training.budget import epochs_that_fit


def test_the_epochs_to_come_fill_the_time_left() -> None:
    assert epochs_that_fit(remaining_s=300, epoch_s=7, done=1, max_epochs=100) == 1 + 42
    assert epochs_that_fit(remaining_s=300, epoch_s=7, done=1, max_epochs=30) == 30


def test_a_run_over_its_budget_ends_with_the_epochs_it_has() -> None:
    assert epochs_that_fit(remaining_s=-5, epoch_s=7, done=3, max_epochs=30) == 3
    assert epochs_that_fit(remaining_s=6, epoch_s=7, done=1, max_epochs=30) == 1


def test_a_zero_epoch_time_is_refused() -> None:
    with pytest.raises(ValueError):
        epochs_that_fit(remaining_s=300, epoch_s=0, done=1, max_epochs=30)
