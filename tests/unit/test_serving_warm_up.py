"""The scoring service's warm-up: one synthetic photo through the whole serving path."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from skinscan_engine.engine import Engine, Prediction, Prepared
from skinscan_engine.serving import BatchSettings, ScoringService, warm_up_photo


def test_warm_up_photo_is_a_valid_input_of_the_model_size(engine: Engine) -> None:
    width, height = engine.geometry.width, engine.geometry.height
    prepared = engine.prepare(warm_up_photo(width, height))
    assert prepared.pixels.shape == (height, width, 3)


def test_warm_up_answers_once_through_the_batcher(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarded: list[int] = []
    real = engine.predict_prepared

    def counting(chunk: Sequence[Prepared], *args: object, **kwargs: object) -> list[Prediction]:
        forwarded.append(len(chunk))
        return real(chunk, *args, **kwargs)

    monkeypatch.setattr(engine, "predict_prepared", counting)
    service = ScoringService(engine, BatchSettings(max_batch_size=4, max_wait_ms=1))
    try:
        seconds = service.warm_up()
    finally:
        service.close()
    assert forwarded == [1]
    assert seconds > 0
