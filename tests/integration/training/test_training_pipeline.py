"""Train, resume, calibrate, export and evaluate end to end on a tiny generated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skinscan_engine.model_card import load_model
from skinscan_training.config import TrainConfig
from skinscan_training.evaluate import evaluate
from skinscan_training.export import finalize_run
from skinscan_training.train import train

# Small input and batch keep a ResNet-50 epoch to a few seconds on two CPU cores.
FAST = {"width": 48, "height": 36, "batch_size": 16, "samples_per_epoch": 64, "device": "cpu"}


@pytest.fixture(scope="module")
def trained_run(tiny_ham: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    train(TrainConfig(data=str(tiny_ham), out=str(run), epochs=1, **FAST))
    return run


def test_one_epoch_writes_checkpoints_log_and_split(trained_run: Path) -> None:
    for name in ("last.pt", "best.pt", "split.json", "config.json", "log.jsonl"):
        assert (trained_run / name).is_file(), name
    entries = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in entries] == [1]
    assert entries[0]["val_loss"] > 0


def test_resume_continues_from_the_checkpoint(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(trained_run, run)
    train(TrainConfig(data=str(tiny_ham), out=str(run), epochs=2, **FAST), resume=True)
    entries = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    # Epoch 1 is not trained again: the log gains exactly epoch 2.
    assert [e["epoch"] for e in entries] == [1, 2]
    import torch

    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 2


def test_resume_without_epochs_keeps_the_runs_own_length(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "again"
    shutil.copytree(trained_run, run)
    # epochs=0 is what `skinscan train --resume` passes without --epochs: the 1-epoch run is
    # complete, so nothing more is trained (and no schedule is stepped past its end).
    train(TrainConfig(data=str(tiny_ham), out=str(run), **{**FAST, "epochs": 0}), resume=True)
    entries = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in entries] == [1]


def test_a_run_over_its_time_budget_ends_after_its_first_epoch(
    tiny_ham: Path, tmp_path: Path
) -> None:
    import torch

    run = tmp_path / "budget"
    # Any epoch takes longer than a millisecond: only the first fits, and the run stops there.
    train(TrainConfig(data=str(tiny_ham), out=str(run), epochs=5, time_budget=0.001, **FAST))
    entries = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in entries] == [1]
    assert json.loads((run / "config.json").read_text())["epochs"] == 1
    last = torch.load(run / "last.pt", weights_only=False)
    assert last["config"]["epochs"] == 1
    # The schedule was rebuilt for one epoch, so it ended (a 5-epoch one would be warming up).
    assert last["scheduler"]["total_steps"] == last["scheduler"]["last_epoch"]


def test_resume_without_checkpoint_is_a_clear_error(tiny_ham: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(TrainConfig(data=str(tiny_ham), out=str(tmp_path / "empty"), **FAST), resume=True)


def test_export_then_evaluate_writes_report_and_plots(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    stem = finalize_run(trained_run, version="test-tiny")
    loaded = load_model(stem)
    assert loaded.card.version == "test-tiny"
    assert loaded.gate is not None and loaded.card.ood["threshold"] is not None
    assert loaded.card.temperature > 0 and 0 <= loaded.card.threshold <= 1
    out = tmp_path / "eval"
    report = evaluate(
        stem, tiny_ham, out, split_file=trained_run / "split.json", n_boot=20, write_card=True
    )
    assert (trained_run / "training_curves.png").is_file()
    for png in (
        "roc_malignant.png",
        "roc_per_class.png",
        "reliability.png",
        "confusion_7.png",
        "confusion_binary.png",
    ):
        assert (out / png).stat().st_size > 1000, png
    saved = json.loads((out / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    test_part = saved["ham10000_test"]
    assert test_part["images"] == len(json.loads((trained_run / "split.json").read_text())["test"])
    lo, hi = test_part["malignant_vs_benign"]["auc"]["ci95"]
    assert lo <= hi
    assert set(saved["targets"]) == {"auc", "sensitivity", "specificity", "f1", "ece_after"}
    assert saved["engine"]["device"] == "cpu" and saved["engine"]["batchnorm_folded"] is True
    light = test_part["light_colour"]
    assert light["gain_spread"] == 0.1 and 0.0 <= light["verdicts_changed"] <= 1.0
    assert 0.0 <= light["auc"] <= 1.0 and light["mean_abs_change_p_malignant"] >= 0.0
    # --write-card stored the measured figures next to the validation ones.
    assert "ham10000_test" in load_model(stem).card.metrics


def test_evaluate_scores_the_validation_part_without_touching_the_card(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    stem = finalize_run(trained_run, version="val-check", out_stem=tmp_path / "m" / "model")
    card_before = stem.with_suffix(".json").read_text()
    split = json.loads((trained_run / "split.json").read_text())
    report = evaluate(
        stem,
        tiny_ham,
        tmp_path / "val",
        split_file=trained_run / "split.json",
        n_boot=5,
        part="validation",
    )
    assert set(report) == {"model_version", "engine", "ham10000_validation"}
    val = report["ham10000_validation"]
    assert val["images"] == len(split["val"]) != len(split["test"])
    # The same images the export calibrated on (its AUC is not compared: on a few dozen
    # images the engine's rounding (BatchNorm folded, bf16) can swap a pair and move it 0.05).
    assert val["images"] == load_model(stem).card.metrics["validation"]["images"]
    assert sum(val["counts_at_threshold"].values()) == val["images"]
    assert (tmp_path / "val" / "roc_malignant.png").is_file()
    assert stem.with_suffix(".json").read_text() == card_before
    with pytest.raises(ValueError, match="test figures only"):
        evaluate(stem, tiny_ham, tmp_path / "v2", n_boot=5, write_card=True, part="validation")
    with pytest.raises(ValueError, match="part must be one of"):
        evaluate(stem, tiny_ham, tmp_path / "v3", n_boot=5, part="train")
    # The training part measures the fit: the images the network learnt from.
    fit = evaluate(
        stem,
        tiny_ham,
        tmp_path / "fit",
        split_file=trained_run / "split.json",
        n_boot=5,
        part="training",
    )
    assert fit["ham10000_training"]["images"] == len(split["train"])
    assert stem.with_suffix(".json").read_text() == card_before


def test_init_starts_from_a_shipped_model(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import torch

    stem = finalize_run(trained_run, version="init-source", out_stem=tmp_path / "src" / "model")
    shipped = load_model(stem).network.state_dict()
    # With a learning rate of 0 the weights cannot move: they must be the shipped ones.
    warm = tmp_path / "warm"
    train(TrainConfig(data=str(tiny_ham), out=str(warm), epochs=1, lr=0.0, init=str(stem), **FAST))
    state = torch.load(warm / "last.pt", weights_only=False)["model"]
    for name in ("conv1.weight", "layer4.2.conv3.weight", "fc.1.weight", "fc.1.bias"):
        assert torch.equal(state[name], shipped[name]), name
    # The exported card says where the run started, so the model card can name both stages,
    # even once the earlier model's files are gone.
    for f in stem.parent.iterdir():
        f.unlink()
    training = load_model(finalize_run(warm, version="warm")).card.training
    assert training["initialised_from"]["version"] == "init-source"
    assert training["initialised_from"]["input"] == "48x36"
    assert training["precision"] in ("bf16", "fp32")
    # A run from scratch with the same seed starts elsewhere.
    cold = tmp_path / "cold"
    train(TrainConfig(data=str(tiny_ham), out=str(cold), epochs=1, lr=0.0, **FAST))
    scratch = torch.load(cold / "last.pt", weights_only=False)["model"]
    assert not torch.equal(scratch["fc.1.weight"], shipped["fc.1.weight"])


def test_init_from_a_missing_model_is_a_clear_error(tiny_ham: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        train(
            TrainConfig(
                data=str(tiny_ham), out=str(tmp_path / "r"), init=str(tmp_path / "nope"), **FAST
            )
        )


def test_fit_gate_replaces_only_the_gate_of_a_shipped_model(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import argparse

    import torch
    from safetensors.torch import load_file

    from skinscan_training import gate as gate_cli

    stem = finalize_run(trained_run, version="gate-source", out_stem=tmp_path / "src" / "model")
    card = load_model(stem).card
    assert card.ood["method"] == "mahalanobis_layers"
    assert card.ood["max_reject_in_distribution"] == gate_cli.GATE_REJECT
    evaluate(
        stem,
        tiny_ham,
        tmp_path / "eval",
        split_file=trained_run / "split.json",
        n_boot=5,
        write_card=True,
    )
    assert "ham10000_test" in load_model(stem).card.metrics

    out = gate_cli.refit_gate(
        stem,
        tiny_ham,
        trained_run / "split.json",
        tmp_path / "refit" / "model",
        max_reject=0.05,
        version="gate-2",
    )
    before = load_file(str(stem.with_suffix(".safetensors")))
    after = load_file(str(out.with_suffix(".safetensors")))
    assert before.keys() == after.keys()
    for name in before:
        if not name.startswith("ood."):  # the network itself is untouched, bit for bit
            assert torch.equal(before[name], after[name]), name
    refit = load_model(out).card
    assert refit.version == "gate-2"
    assert refit.ood["max_reject_in_distribution"] == 0.05
    assert refit.ood["val_rejected"] <= 0.05 + 1e-9
    # Figures measured with the previous gate are dropped until evaluated again.
    assert set(refit.metrics) == {"validation"}
    assert refit.temperature == card.temperature and refit.threshold == card.threshold

    args = argparse.Namespace(
        model=str(out),
        data=str(tiny_ham),
        split=None,
        out=None,
        cache_dir=None,
        max_reject=0.2,
        version=None,
    )
    assert gate_cli.run(args) == 2  # above the 5% cap: refused, nothing written
    assert load_model(out).card.ood == refit.ood


def test_average_last_exports_the_mean_of_the_last_epochs(tiny_ham: Path, tmp_path: Path) -> None:
    import torch

    run = tmp_path / "averaged"
    chosen = train(TrainConfig(data=str(tiny_ham), out=str(run), epochs=3, average_last=2, **FAST))
    assert chosen == run / "averaged.pt"
    assert sorted(p.name for p in (run / "epochs").iterdir()) == ["e002.pt", "e003.pt"]
    kept = [torch.load(run / "epochs" / f"e00{e}.pt") for e in (2, 3)]
    averaged = torch.load(chosen, weights_only=False)
    assert averaged["averaged_epochs"] == [2, 3]
    expected = (kept[0]["conv1.weight"] + kept[1]["conv1.weight"]) / 2
    torch.testing.assert_close(averaged["model"]["conv1.weight"], expected)
    # BatchNorm statistics are measured for the mean weights, not averaged.
    stale = (kept[0]["bn1.running_mean"] + kept[1]["bn1.running_mean"]) / 2
    assert not torch.allclose(averaged["model"]["bn1.running_mean"], stale)
    assert "val_auc_malignant" in json.loads((run / "averaged.json").read_text())
    card = load_model(finalize_run(run, version="avg", checkpoint=chosen)).card
    assert card.training["averaged_epochs"] == [2, 3]
    assert card.training["config"]["average_last"] == 2


def test_averaging_a_run_that_kept_no_weights_is_a_clear_error(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "plain"
    shutil.copytree(trained_run, run)
    # Asking a finished run for its mean afterwards needs the weights it never kept.
    with pytest.raises(FileNotFoundError, match="--average-last"):
        cfg = TrainConfig(data=str(tiny_ham), out=str(run), average_last=2, **{**FAST, "epochs": 0})
        train(cfg, resume=True)


def test_a_teacher_s_probabilities_become_the_training_targets(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import numpy as np
    import torch

    from skinscan_training.distill import training_targets
    from skinscan_training.run_data import prepare_data

    teacher = finalize_run(trained_run, version="teacher", out_stem=tmp_path / "t" / "model")
    run = tmp_path / "prepared"  # not the student's run folder: a new run needs an empty one
    run.mkdir()
    cfg = TrainConfig(data=str(tiny_ham), out=str(run), teachers=[str(teacher)], **FAST)
    data = prepare_data(cfg, run)
    targets = training_targets(cfg, data, torch.device("cpu"), bf16=False)
    train_idx, val_idx = data.index["train"], data.index["val"]
    one_hot = np.eye(7, dtype=np.float32)[data.labels]
    # Validation rows are never drawn and keep their labels; training rows get a real mix.
    np.testing.assert_array_equal(targets[val_idx], one_hot[val_idx])
    soft = (targets[train_idx] - 0.5 * one_hot[train_idx]) / 0.5
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-5)
    assert (soft > 0).all() and not np.allclose(soft, one_hot[train_idx], atol=0.05)

    # The soft targets reach the training: same seed, different weights than from labels alone.
    train(
        TrainConfig(
            data=str(tiny_ham), out=str(tmp_path / "s"), teachers=[str(teacher)], epochs=1, **FAST
        )
    )
    student = torch.load(tmp_path / "s" / "last.pt", weights_only=False)
    plain = torch.load(trained_run / "last.pt", weights_only=False)
    assert not torch.equal(student["model"]["fc.1.weight"], plain["model"]["fc.1.weight"])
    second = finalize_run(tmp_path / "s", version="student")
    card = load_model(second).card
    assert card.training["config"]["teachers"] == [str(teacher)]

    # Two teachers: the mean of their probabilities is mixed in.
    from skinscan_training.distill import mixed_targets, teacher_probabilities

    both = training_targets(
        TrainConfig(data=str(tiny_ham), out=str(run), teachers=[str(teacher), str(second)], **FAST),
        data,
        torch.device("cpu"),
        bf16=False,
    )
    images = data.images[train_idx]
    each = [
        teacher_probabilities(p, images, 0, torch.device("cpu"), False) for p in (teacher, second)
    ]
    assert not np.allclose(each[0], each[1], atol=1e-3)
    expected = mixed_targets(data.labels[train_idx], (each[0] + each[1]) / 2, 0.5)
    np.testing.assert_allclose(both[train_idx], expected, rtol=1e-5, atol=1e-6)

    # At weight 0 the targets are the labels again, and so is the network: loading the teacher
    # leaves the student's initialisation and dropout to the seed alone.
    train(
        TrainConfig(
            data=str(tiny_ham),
            out=str(tmp_path / "w0"),
            teachers=[str(teacher)],
            distill_weight=0.0,
            epochs=1,
            **FAST,
        )
    )
    unmixed = torch.load(tmp_path / "w0" / "last.pt", weights_only=False)
    for name, weight in plain["model"].items():
        torch.testing.assert_close(unmixed["model"][name], weight, rtol=1e-3, atol=1e-4)


def test_another_seed_trains_on_the_same_split(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import torch

    run = tmp_path / "seed1"
    train(TrainConfig(data=str(tiny_ham), out=str(run), epochs=1, seed=1, **FAST))
    split = json.loads((run / "split.json").read_text())
    assert split == json.loads((trained_run / "split.json").read_text())
    assert split["seed"] == 0
    # The seed still reaches the initialisation and the batches.
    weights = torch.load(run / "last.pt", weights_only=False)["model"]["fc.1.weight"]
    first = torch.load(trained_run / "last.pt", weights_only=False)["model"]["fc.1.weight"]
    assert not torch.equal(weights, first)
    card = load_model(finalize_run(run, version="seed1")).card
    assert card.training["split_seed"] == 0 and card.training["config"]["seed"] == 1


def test_a_teacher_from_another_split_or_missing_is_refused(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    teacher = finalize_run(trained_run, version="teacher", out_stem=tmp_path / "t" / "model")

    def student(out: str, **changes: object) -> TrainConfig:
        settings = {**FAST, "teachers": [str(teacher)], **changes}
        return TrainConfig(data=str(tiny_ham), out=str(tmp_path / out), **settings)

    with pytest.raises(ValueError, match="leak validation images"):
        train(student("a", split_seed=1))
    with pytest.raises(ValueError, match="takes 48x36 input"):
        train(student("b", width=64, height=48))
    with pytest.raises(FileNotFoundError, match="not found"):
        train(student("c", teachers=[str(teacher), str(tmp_path / "nope")]))
    with pytest.raises(ValueError, match="distill-weight"):
        train(student("d", distill_weight=1.5))


def test_a_binary_weight_adds_the_malignant_vs_benign_term(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import torch

    train(
        TrainConfig(
            data=str(tiny_ham), out=str(tmp_path / "b"), binary_weight=1.0, epochs=1, **FAST
        )
    )
    plain = torch.load(trained_run / "last.pt", weights_only=False)
    binary = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    # Same seed, same batches: only the loss differs, and with it the trained head.
    assert binary["config"]["binary_weight"] == 1.0
    assert not torch.equal(binary["model"]["fc.1.weight"], plain["model"]["fc.1.weight"])
    with pytest.raises(ValueError, match="binary-weight"):
        train(TrainConfig(data=str(tiny_ham), out=str(tmp_path / "n"), binary_weight=-1.0, **FAST))
    with pytest.raises(ValueError, match="label-smoothing"):
        train(TrainConfig(data=str(tiny_ham), out=str(tmp_path / "s"), label_smoothing=1.0, **FAST))


def test_colour_constancy_travels_from_training_to_the_shipped_card(
    tiny_ham: Path, trained_run: Path, tmp_path: Path
) -> None:
    import torch

    from skinscan_engine.engine import Engine, EngineConfig

    run = tmp_path / "c"
    train(TrainConfig(data=str(tiny_ham), out=str(run), colour_constancy=True, epochs=1, **FAST))
    lit = torch.load(run / "last.pt", weights_only=False)["geometry"]
    plain = torch.load(trained_run / "last.pt", weights_only=False)["geometry"]
    assert plain["illuminant"] is None
    assert len(lit["illuminant"]) == 3 and all(0.05 <= v <= 1.0 for v in lit["illuminant"])
    # The normalisation is measured on the re-lit images, so it differs from the plain run's.
    assert lit["mean"] != plain["mean"]

    stem = finalize_run(run, version="test-lit")
    engine = Engine.from_path(stem, EngineConfig(device="cpu", precision="fp32"))
    assert engine.geometry.illuminant == tuple(lit["illuminant"])
    assert engine.card.illuminant == list(lit["illuminant"])
    image = next((tiny_ham / "images").glob("*.jpg")).read_bytes()
    [pred] = engine.predict([image])
    assert pred.result["verdict"] in ("benign", "malignant", "unknown")


def test_the_card_threshold_is_rounded_down_and_its_figures_measured_at_it(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from skinscan_training import export

    measured: list[tuple[np.ndarray, np.ndarray, float]] = []
    real_metrics = export.binary_metrics

    def spy(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
        measured.append((np.asarray(y, bool), np.asarray(p), threshold))
        return real_metrics(y, p, threshold)

    monkeypatch.setattr(export, "binary_metrics", spy)
    # An exact threshold that rounding to the nearest would raise (to 0.1235) past the score
    # of the last malignant image it must keep.
    monkeypatch.setattr(export, "threshold_for_sensitivity", lambda p, y, target: 0.123456)
    card = load_model(finalize_run(trained_run, "thr", tmp_path / "m" / "model")).card
    assert card.threshold == 0.1234
    # The validation figures on the card are those of the threshold the card serves.
    [(y, p, threshold)] = measured
    assert threshold == card.threshold
    validation = card.metrics["validation"]
    assert validation["sensitivity"] == round(float((p[y] >= card.threshold).mean()), 4)
    assert validation["specificity"] == round(float((p[~y] < card.threshold).mean()), 4)


def test_a_resumed_run_trains_as_the_uninterrupted_one(
    tiny_ham: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from skinscan_training import train as training

    def config(out: str, epochs: int = 2) -> TrainConfig:
        return TrainConfig(data=str(tiny_ham), out=str(tmp_path / out), epochs=epochs, **FAST)

    train(config("straight"))

    class Stop(Exception):
        pass

    real_save = training.save_epoch

    def save_then_stop(run_dir: Path, state: dict, improved: bool) -> None:
        real_save(run_dir, state, improved)
        if state["epoch"] == 1:
            raise Stop  # the run is killed after its first epoch's checkpoint

    monkeypatch.setattr(training, "save_epoch", save_then_stop)
    with pytest.raises(Stop):
        train(config("resumed"))
    monkeypatch.setattr(training, "save_epoch", real_save)
    train(config("resumed", epochs=0), resume=True)

    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert resumed["epoch"] == straight["epoch"] == 2
    # Same batches and the same dropout masks (torch's global generator is restored, not
    # reseeded): the same weights, bit for bit.
    for name, weight in straight["model"].items():
        assert torch.equal(resumed["model"][name], weight), name
    for name in ("straight", "resumed"):
        log = (tmp_path / name / "log.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in log] == [1, 2]


@pytest.mark.parametrize(
    ("plans", "average_last", "window"),
    [
        ({1: 3, 2: 3}, 5, [1, 2, 3]),  # cut to 3 of 10 epochs: the window moves to the start
        ({1: 5, 2: 2}, 2, [1, 2]),  # cut again after epoch 2: it ends there
        ({1: 5, 2: 4}, 2, [3, 4]),  # the first two, kept while the plan could change, go
    ],
)
def test_a_run_the_time_budget_shortens_averages_its_own_last_epochs(
    tiny_ham: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plans: dict[int, int],
    average_last: int,
    window: list[int],
) -> None:
    import torch

    from skinscan_training import train as training

    # What the budget fits after epochs 1 and 2, whatever they took.
    monkeypatch.setattr(training, "epochs_that_fit", lambda left, epoch_s, done, most: plans[done])
    run = tmp_path / "budget"
    cfg = TrainConfig(
        data=str(tiny_ham),
        out=str(run),
        epochs=10,
        average_last=average_last,
        time_budget=3600,
        **FAST,
    )
    chosen = train(cfg)
    assert chosen == run / "averaged.pt"
    assert torch.load(chosen, weights_only=False)["averaged_epochs"] == [window[0], window[-1]]
    assert sorted(p.name for p in (run / "epochs").iterdir()) == [f"e{e:03d}.pt" for e in window]
    assert json.loads((run / "averaged.json").read_text())["averaged_epochs"] == [
        window[0],
        window[-1],
    ]


def test_a_new_run_into_a_run_folder_is_refused_without_resume(
    tiny_ham: Path, trained_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skinscan import cli

    before = {name: (trained_run / name).read_bytes() for name in ("config.json", "log.jsonl")}
    # Another seed into the same folder would train on the folder's split and append its log.
    cfg = TrainConfig(data=str(tiny_ham), out=str(trained_run), epochs=1, split_seed=1, **FAST)
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg)
    assert cli.main(["train", "--data", str(tiny_ham), "--out", str(trained_run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skinscan train: ") and "give --resume" in err, err
    assert err.count("\n") == 1
    assert {name: (trained_run / name).read_bytes() for name in before} == before


def test_resume_takes_the_data_from_the_command_line_and_refuses_other_settings(
    tiny_ham: Path, trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import torch

    from skinscan import cli

    run = tmp_path / "moved"
    shutil.copytree(trained_run, run)
    # The data folder has moved since the run was made: its checkpoints name the old place.
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(run / name, weights_only=False)
        ckpt["config"]["data"] = str(tmp_path / "old-place")
        torch.save(ckpt, run / name)
    log = (run / "log.jsonl").read_text()
    resume = ["train", "--data", str(tiny_ham), "--out", str(run), "--resume", "--device", "cpu"]

    assert cli.main([*resume, "--lr", "1e-4", "--no-bf16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skinscan train: ") and err.count("\n") == 1, err
    assert "--lr" in err and "--no-bf16" in err and "start a new run" in err
    assert (run / "log.jsonl").read_text() == log

    assert cli.main([*resume, "--epochs", "2", "--version", "moved"]) == 0
    last = torch.load(run / "last.pt", weights_only=False)
    assert last["epoch"] == 2 and last["config"]["data"] == str(tiny_ham)
    assert last["config"]["lr"] == TrainConfig(data="", out="").lr  # the run's own
    assert load_model(run / "export" / "skinscan-resnet50").card.version == "moved"


def test_the_card_threshold_keeps_the_aim_at_every_precision_the_engine_serves_in(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chosen on the served engine's scores (fp16 weights, folded BatchNorm, the card's rounded
    temperature), at each precision it may serve in: the lowest threshold, rounded down."""
    import numpy as np

    from skinscan_training import export, served
    from skinscan_training.calibration import stored_threshold

    real_served, real_threshold = served.served_p_malignant, export.threshold_for_sensitivity
    lower: list[np.ndarray] = []

    def served_twice(stem: Path, images: np.ndarray, device: object) -> dict[str, np.ndarray]:
        fp32 = real_served(stem, images, device)["fp32"]
        lower.append(fp32 * 0.9)  # as if bf16 scored every image a little lower
        return {"fp32": fp32, "bf16": lower[0]}

    chosen: list[tuple[np.ndarray, float]] = []

    def recorded(p: np.ndarray, y: np.ndarray, target: float) -> float:
        chosen.append((np.asarray(p), real_threshold(p, y, target)))
        return chosen[-1][1]

    monkeypatch.setattr(export, "served_p_malignant", served_twice)
    monkeypatch.setattr(export, "threshold_for_sensitivity", recorded)
    card = load_model(finalize_run(trained_run, "prec", tmp_path / "m" / "model")).card
    on_served = [t for p, t in chosen[1:]]  # the first: the training network's own scores
    assert len(on_served) == 2 and any(p is lower[0] for p, _ in chosen)
    assert card.threshold == stored_threshold(min(on_served)) < stored_threshold(max(on_served))
    assert "bf16" in card.metrics["validation"]["threshold_chosen_on"]
