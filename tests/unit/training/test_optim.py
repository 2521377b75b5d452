"""The optimisers a run can choose, and the schedule that drives them."""

from __future__ import annotations

import pytest
import torch

from skinscan_training.optim import make_optimizer, one_cycle

CPU = torch.device("cpu")


def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(4, 2)


def step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """One optimiser step on ``(x, y)``; returns the loss before it."""
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def test_sgd_uses_nesterov_momentum_and_the_given_settings() -> None:
    opt = make_optimizer(tiny(), "sgd", lr=0.05, weight_decay=5e-4, device=CPU)
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9
    assert group["lr"] == 0.05 and group["weight_decay"] == 5e-4


def test_adamw_is_built_by_name() -> None:
    opt = make_optimizer(tiny(), "adamw", lr=2e-3, weight_decay=0.05, device=CPU)
    assert isinstance(opt, torch.optim.AdamW)


def test_an_unknown_optimiser_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="lbfgs"):
        make_optimizer(tiny(), "lbfgs", lr=0.1, weight_decay=0.0, device=CPU)


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_one_cycle_warms_up_peaks_and_ends_near_zero(name: str) -> None:
    model = tiny()
    opt = make_optimizer(model, name, lr=0.1, weight_decay=0.0, device=CPU)
    sched = one_cycle(opt, 0.1, epochs=4, steps_per_epoch=5)
    rates = []
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    for _ in range(20):
        rates.append(opt.param_groups[0]["lr"])
        step(model, opt, x, y)
        sched.step()
    assert rates[0] < 0.01 and max(rates) == pytest.approx(0.1, rel=1e-3)
    assert rates[-1] < 0.001


def test_sgd_trains_a_small_problem() -> None:
    # A linearly separable problem: the loss must fall, so the optimiser is wired to the model.
    torch.manual_seed(1)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    model = tiny()
    opt = make_optimizer(model, "sgd", lr=0.1, weight_decay=0.0, device=CPU)
    first = torch.nn.functional.cross_entropy(model(x), y).item()
    for _ in range(50):
        loss = step(model, opt, x, y)
    assert loss.item() < first / 2
