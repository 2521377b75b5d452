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
            "epochs": 5,
            "precision": "fp32",
            "config": {"epochs": 9},
            "initialised_from": {
                "version": "1.0.0",
                "input": "128x96",
                "epochs": 11,
                "schedule_epochs": 15,
            },
        },
    )
    assert _stages(card) == [
        "- Stage 1: weights from epoch 11 of a 15-epoch schedule at 128x96 px, from random "
        "initialisation, bfloat16 autocast.",
        "- Stage 2: weights from epoch 5 of a 9-epoch schedule at 160x120 px, from stage 1's "
        "weights (warm start), fp32.",
    ]


def test_model_from_scratch_has_one_stage() -> None:
    card = ModelCard(version="1.0.0", training={"epochs": 15, "precision": "bf16"})
    assert _stages(card) == [
        "- Stage 1: weights from epoch 15 at 128x96 px, from random initialisation, "
        "bfloat16 autocast."
    ]


def test_committed_model_card_matches_the_shipped_model_and_its_report() -> None:
    # docs/model-card.md is rendered from the card and the report: re-rendering changes nothing.
    import json
    from pathlib import Path

    from skinscan_training.card_doc import render

    repo = Path(__file__).resolve().parents[3]
    card = ModelCard.load(repo / "models" / "skinscan-resnet50-v1.json")
    report = json.loads((repo / "docs" / "model" / "report.json").read_text())
    ood = json.loads((repo / "docs" / "model" / "ood_check.json").read_text())
    heatmaps = json.loads((repo / "docs" / "model" / "heatmap_check.json").read_text())
    assert heatmaps["model_version"] == card.version  # the check was run on the shipped model
    rendered = render(card, report, "model", ood, heatmaps)
    assert rendered == (repo / "docs" / "model-card.md").read_text()


def test_the_card_says_how_the_engine_scored_the_test_part() -> None:
    from skinscan_training.card_doc import _scored_by

    engine = {"device": "cpu", "precision": "bf16", "batchnorm_folded": True}
    assert _scored_by(engine) == (
        " Scored through the serving engine as users get it (cpu, bfloat16, BatchNorm folded "
        "into the convolutions)."
    )
    assert "float32)" in _scored_by({**engine, "precision": "fp32", "batchnorm_folded": False})
    assert _scored_by(None) == ""  # a report from before the setup was recorded


def test_the_card_says_when_images_are_re_lit() -> None:
    from skinscan_training.card_doc import _colour

    assert _colour(ModelCard(version="1.0.0")) == []
    [line] = _colour(ModelCard(version="1.2.0", illuminant=[0.8, 0.6, 0.62]))
    assert "RGB 0.800, 0.600, 0.620" in line and "shades-of-grey" in line


def test_the_card_says_how_batches_were_drawn() -> None:
    from skinscan_training.card_doc import _sampling

    def card(power: float) -> ModelCard:
        return ModelCard(version="1.3.0", training={"config": {"balance_power": power}})

    assert "as the data comes" in _sampling(card(0.0))
    assert "rare diagnoses" in _sampling(card(0.5)) and "-0.5" in _sampling(card(0.5))
    assert "-0.25" in _sampling(card(0.25))


def test_the_card_names_the_optimiser() -> None:
    from skinscan_training.card_doc import _optimiser

    assert _optimiser(ModelCard(version="1.3.0")) == "AdamW"  # cards from before --optimizer
    sgd = ModelCard(version="1.4.0", training={"config": {"optimizer": "sgd"}})
    assert _optimiser(sgd) == "SGD with Nesterov momentum"


def test_the_limits_say_whether_the_light_colour_matters() -> None:
    from skinscan_training.card_doc import _light_limit

    assert "read as they are" in _light_limit(ModelCard(version="1.1.0"))
    assert "re-lit" in _light_limit(ModelCard(version="1.2.0", illuminant=[0.8, 0.6, 0.62]))


def test_the_card_reports_the_light_colour_check() -> None:
    from skinscan_training.card_doc import _light

    assert _light({}) == []  # a report from before the check
    ham = {
        "light_colour": {
            "gain_spread": 0.1,
            "auc": 0.878,
            "verdicts_changed": 0.107,
            "mean_abs_change_p_malignant": 0.067,
            "unknown_rate": 0.103,
        }
    }
    text = " ".join(_light(ham))
    assert "from 0.90 to 1.10" in text and "10.7% of the verdicts change" in text
    assert "AUC 0.878" in text and '10.3% answered "unknown"' in text


def test_the_card_says_where_the_heatmap_points_when_the_check_was_run() -> None:
    from skinscan_training.card_doc import _heatmap_limit, _heatmaps

    card = ModelCard(version="1.4.0", input_width=129, input_height=97)
    assert _heatmaps(card, None, "model") == [] and _heatmap_limit(card, None) == []
    lines = _heatmaps(card, {"summary": "On 9 of 10 images ..."}, "plots")
    text = " ".join(lines)
    assert "layer4's 5x4 grid" in text and "On 9 of 10 images ..." in text
    assert "![heatmaps on validation images](plots/heatmap_check.png)" in lines
    assert "how the input size straightened them" in text  # no pattern measured: no lean


def _found(peak: float, share: float, centre: float) -> dict:
    return {
        "heatmap_peak_on_lesion": peak,
        "heatmap_share_on_lesion": share,
        "centre_share_on_lesion": centre,
    }


def test_the_heatmap_limit_follows_the_measured_figures() -> None:
    from skinscan_training.card_doc import _heatmap_limit, _heatmaps

    leaning = {"summary": "", "pattern": {"left_minus_right": -0.22, "top_minus_bottom": -0.18}}
    [limit] = _heatmap_limit(
        ModelCard(version="1.3.0"), {**leaning, "all": _found(0.35, 0.23, 0.35)}
    )
    assert "coarse (4x3 cells)" in limit
    assert "on the lesion in 35% of validation images" in limit
    assert "23% of its weight lies there (less than a fixed spot at the centre: 35%)" in limit
    assert "Why the maps lean" in " ".join(_heatmaps(ModelCard(version="1.3.0"), leaning, "model"))

    even = {"summary": "", "pattern": {"left_minus_right": -0.02, "top_minus_bottom": 0.02}}
    card = ModelCard(version="1.4.0", input_width=129, input_height=97)
    [limit] = _heatmap_limit(card, {**even, "all": _found(0.76, 0.40, 0.35)})
    assert "coarse (5x4 cells)" in limit and "in 76% of validation images" in limit
    assert "(at least as much as a fixed spot at the centre: 35%)" in limit
    assert "earlier models leaned" in " ".join(_heatmaps(card, even, "model"))
