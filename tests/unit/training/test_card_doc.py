"""The model card document names every training stage of a warm-started model."""

from __future__ import annotations

from skinscan_engine.model_card import ModelCard
from skinscan_training.card_doc import _stages


def test_warm_started_model_lists_both_stages_oldest_first() -> None:
    card = ModelCard(
        version="1.1.0",
        input_width=160,
        input_height=120,
        training={
            "epochs": 9,
            "precision": "fp32",
            "initialised_from": {"version": "1.0.0", "input": "128x96", "epochs": 15},
        },
    )
    assert _stages(card) == [
        "- Stage 1: 15 epochs at 128x96 px from random initialisation, bfloat16 autocast.",
        "- Stage 2: 9 epochs at 160x120 px from stage 1's weights (warm start), fp32.",
    ]


def test_model_from_scratch_has_one_stage() -> None:
    card = ModelCard(version="1.0.0", training={"epochs": 15, "precision": "bf16"})
    assert _stages(card) == [
        "- Stage 1: 15 epochs at 128x96 px from random initialisation, bfloat16 autocast."
    ]
