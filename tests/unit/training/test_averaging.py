import pytest
import torch

from skinscan_training.averaging import averaging_window, mean_weights, refresh_batchnorm


def test_the_window_is_the_last_epochs_of_the_run() -> None:
    assert list(averaging_window(21, 5)) == [17, 18, 19, 20, 21]
    assert list(averaging_window(3, 5)) == [1, 2, 3]  # a run shorter than the window


def test_floats_are_averaged_and_counts_come_from_the_last_state() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([2.0], dtype=torch.float16)}
    a["n"], b["n"] = torch.tensor(5), torch.tensor(9)
    mean = mean_weights([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0]))
    assert mean["h"].dtype == torch.float16 and float(mean["h"]) == 1.5
    assert int(mean["n"]) == 9
    with pytest.raises(ValueError):
        mean_weights([])


def test_batchnorm_statistics_are_measured_again_on_the_given_batches() -> None:
    batches = [torch.randn(16, 3, 6, 8) * 2 + 1 for _ in range(4)]
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    model[0].running_mean.fill_(7.0)  # stale statistics from other weights
    refresh_batchnorm(model, iter(batches))
    torch.testing.assert_close(model[0].running_mean, torch.cat(batches).mean(dim=(0, 2, 3)))
    assert model[0].momentum == 0.1 and not model.training
