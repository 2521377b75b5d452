"""`skinscan evaluate`'s inputs: refused up front with one line, or scored with a warning.

A random model (split_seed 0 on its card, as every shipped one) on the tiny generated set.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from skinscan import cli
from skinscan_training.dataset import read_metadata
from skinscan_training.split import grouped_split, save_split


def _strict_json(text: str) -> dict:
    """JSON as a strict parser reads it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in the report")

    return json.loads(text, parse_constant=refuse)


def _write_split(path: Path, seed: int = 0, **parts: list[str]) -> Path:
    path.write_text(json.dumps({"seed": seed, "train": [], "val": [], "test": [], **parts}))
    return path


def _no_images(tmp: Path, ham: Path) -> Path:
    (tmp / "ham").mkdir()
    (tmp / "ham" / "HAM10000_metadata.csv").write_bytes(
        (ham / "HAM10000_metadata.csv").read_bytes()
    )
    return tmp / "ham"


def _no_parts(tmp: Path) -> Path:
    (tmp / "parts.json").write_text('{"seed": 0, "training": [], "validation": []}')
    return tmp / "parts.json"


def _other_seed(tmp: Path, ham: Path) -> Path:
    path = tmp / "split1.json"
    save_split(grouped_split(read_metadata(ham), seed=1), path, seed=1)
    return path


# Each case: (what to change in the arguments, built from tmp_path and the data set; message).
Change = Callable[[Path, Path], dict[str, str]]
CASES: list[tuple[Change, str]] = [
    (lambda tmp, ham: {"--data": str(tmp / "nope")}, "no such folder"),
    (lambda tmp, ham: {"--data": str(_no_images(tmp, ham))}, "has no images/ folder"),
    (lambda tmp, ham: {"--model": str(tmp / "nope")}, "not found"),
    (lambda tmp, ham: {"--split": str(tmp / "nope.json")}, "No such file"),
    (
        lambda tmp, ham: {"--split": str(_write_split(tmp / "s.json", test=["ISIC_9999999"]))},
        "matches no image",
    ),
    (lambda tmp, ham: {"--split": str(_no_parts(tmp))}, "lacks the part train, val, test"),
    (lambda tmp, ham: {"--split": str(_other_seed(tmp, ham))}, "made with seed 1"),
]


@pytest.mark.parametrize(("change", "message"), CASES)
def test_bad_inputs_are_refused_before_the_out_folder_is_made(
    tiny_ham: Path,
    random_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    message: str,
) -> None:
    out = tmp_path / "eval"
    flags = {"--model": str(random_model_dir), "--data": str(tiny_ham), "--out": str(out)}
    flags.update(change(tmp_path, tiny_ham))
    assert cli.main(["evaluate", *[x for pair in flags.items() for x in pair]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skinscan evaluate: ") and message in err, err
    assert err.count("\n") == 1
    assert not out.exists()


def _ids(ham: Path, dx: str) -> list[str]:
    with (ham / "HAM10000_metadata.csv").open(newline="") as fh:
        return [r["image_id"] for r in csv.DictReader(fh) if r["dx"] == dx]


def test_missing_ids_are_counted_and_one_class_gives_a_null_auc_and_sensitivity(
    tiny_ham: Path, random_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test_part = [*_ids(tiny_ham, "nv")[:4], "ISIC_9999998", "ISIC_9999999"]
    split = _write_split(tmp_path / "split.json", test=test_part)
    out = tmp_path / "eval"
    argv = ["--model", str(random_model_dir), "--data", str(tiny_ham), "--split", str(split)]
    assert cli.main(["evaluate", *argv, "--out", str(out), "--bootstrap", "5"]) == 0
    err = capsys.readouterr().err
    assert "2 of the 6 images of the split's test part are not in --data" in err
    assert "benign images only: AUC and sensitivity are undefined" in err
    report = _strict_json((out / "report.json").read_text())
    ham = report["ham10000_test"]
    assert ham["images"] == 4 and ham["missing_from_data"] == 2
    auc = ham["malignant_vs_benign"]["auc"]
    assert auc["value"] is None and auc["ci95"] == [None, None]
    assert "benign images only" in auc["note"]
    assert report["targets"]["auc"] == {"target": ">= 0.9", "measured": None, "met": None}
    # Sensitivity without a malignant image is undefined too: null, not a failing 0.
    sensitivity = ham["malignant_vs_benign"]["sensitivity"]
    assert sensitivity["value"] is None and sensitivity["ci95"] == [None, None]
    assert report["targets"]["sensitivity"]["met"] is None
    assert ham["malignant_vs_benign"]["specificity"]["value"] is not None
    assert ham["light_colour"]["auc"] is None


def test_another_seeds_split_is_scored_only_when_allowed_and_then_with_a_warning(
    tiny_ham: Path, random_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = _other_seed(tmp_path, tiny_ham)
    out = tmp_path / "eval"
    argv = ["--model", str(random_model_dir), "--data", str(tiny_ham), "--split", str(split)]
    argv += ["--out", str(out), "--bootstrap", "5", "--allow-other-split"]
    assert cli.main(["evaluate", *argv]) == 0
    assert "figures may be inflated" in capsys.readouterr().err
    report = _strict_json((out / "report.json").read_text())
    assert report["ham10000_test"]["images"] == len(json.loads(split.read_text())["test"])
