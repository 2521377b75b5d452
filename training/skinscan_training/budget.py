"""Size a training run to a time budget (a GPU lease is counted in minutes)."""

from __future__ import annotations

import math


def epochs_that_fit(remaining_s: float, epoch_s: float, done: int, max_epochs: int) -> int:
    """The run's total epochs when ``done`` are over and each further one takes ``epoch_s``.

    At least ``done`` (a run never ends before the epochs it has finished), at most
    ``max_epochs``; the epochs still to come must fit in ``remaining_s``.
    """
    if epoch_s <= 0:
        raise ValueError("epoch_s must be positive")
    more = max(0, math.floor(remaining_s / epoch_s))
    return max(done, min(max_epochs, done + more))
