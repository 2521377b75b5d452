"""``skinscan predict``: one CSV row per image, errors as rows, heatmaps on request."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import pytest

from skinscan import cli
from skinscan.commands import predict
from tests import image_samples as samples


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    predict.add_arguments(parser)
    return predict.run(parser.parse_args(argv))


def test_folder_with_bad_files(
    tmp_path: Path, random_model_dir: Path, ham_images: list[bytes]
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, data in enumerate(ham_images[:3]):
        (folder / f"lesion{i}.jpg").write_bytes(data)
    (folder / "sub" / "lesion0.jpg").write_bytes(ham_images[3])  # same name, other folder
    (folder / "notes.jpg").write_bytes(samples.text_as_jpg())
    (folder / "empty.png").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image suffix: skipped in folders")
    missing = tmp_path / "missing.jpg"
    out, maps = tmp_path / "out.csv", tmp_path / "maps"

    code = _run(
        [
            str(folder),
            str(missing),
            "--csv",
            str(out),
            "--heatmaps",
            str(maps),
            "--model",
            str(random_model_dir),
            "--batch-size",
            "3",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )

    assert code == 1  # some rows are errors
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == [*predict.COLUMNS, "heatmap", "overlay"]
    by_name = {Path(r["image"]).relative_to(tmp_path).as_posix(): r for r in rows}
    assert set(by_name) == {
        "in/lesion0.jpg",
        "in/lesion1.jpg",
        "in/lesion2.jpg",
        "in/sub/lesion0.jpg",
        "in/notes.jpg",
        "in/empty.png",
        "missing.jpg",
    }
    for name in ("in/lesion0.jpg", "in/lesion1.jpg", "in/lesion2.jpg", "in/sub/lesion0.jpg"):
        row = by_name[name]
        assert row["verdict"] in ("benign", "malignant", "unknown")
        assert 0.0 <= float(row["p_malignant"]) <= 1.0 and row["error"] == ""
        assert row["model_version"] == "test-random"
    assert by_name["in/notes.jpg"]["verdict"] == "error"
    assert by_name["in/notes.jpg"]["error"].startswith("not_an_image")
    assert by_name["in/empty.png"]["error"].startswith("empty")
    assert by_name["missing.jpg"]["error"].startswith("unreadable")
    # The inputs' layout under --heatmaps (their common folder is tmp_path), as batch does.
    written = sorted(p.relative_to(maps).as_posix() for p in maps.rglob("*.png"))
    scored = ("in/lesion0.jpg", "in/lesion1.jpg", "in/lesion2.jpg", "in/sub/lesion0.jpg")
    assert written == sorted(
        f"{name}.{kind}.png" for name in scored for kind in ("heatmap", "overlay")
    )
    for name in scored:
        assert by_name[name]["heatmap"] == str(maps / f"{name}.heatmap.png")
        assert by_name[name]["overlay"] == str(maps / f"{name}.overlay.png")
    assert by_name["missing.jpg"]["heatmap"] == by_name["missing.jpg"]["overlay"] == ""


def test_all_good_to_stdout(
    tmp_path: Path, random_model_dir: Path, ham_images: list[bytes], capsys
) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(ham_images[0])
    assert _run([str(image), "--model", str(random_model_dir), "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == ",".join(predict.COLUMNS) and len(lines) == 2


def test_no_model_or_no_images(tmp_path: Path) -> None:
    assert _run([str(tmp_path), "--no-progress"]) == 2  # empty folder
    image = tmp_path / "a.jpg"
    image.write_bytes(samples.jpeg())
    assert _run([str(image), "--model", str(tmp_path / "none"), "--no-progress"]) == 2


def test_heatmap_names_cannot_collide(
    tmp_path: Path, random_model_dir: Path, ham_images: list[bytes]
) -> None:
    # x-2 is what the old de-duplication named the second x.jpg: the third image's own name.
    inputs = {"a/x.jpg": ham_images[0], "b/x.jpg": ham_images[1], "c/x-2.jpg": ham_images[2]}
    for name, data in inputs.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(data)
    common = ["--model", str(random_model_dir), "--no-progress", "--precision", "fp32"]
    out, maps = tmp_path / "out.csv", tmp_path / "maps"
    argv = [str(tmp_path / "in" / n) for n in inputs]
    assert _run([*argv, "--csv", str(out), "--heatmaps", str(maps), *common]) == 0
    rows = {
        Path(r["image"]).relative_to(tmp_path / "in").as_posix(): r
        for r in csv.DictReader(out.open())
    }
    overlays = {rows[name]["overlay"] for name in inputs}
    assert overlays == {str(maps / f"{name}.overlay.png") for name in inputs}
    # Each row's overlay is its own image's: the same as scoring that image alone.
    for name in inputs:
        alone = tmp_path / "alone" / name
        _run(
            [
                str(tmp_path / "in" / name),
                "--csv",
                str(tmp_path / "a.csv"),
                "--heatmaps",
                str(alone.parent),
                *common,
            ]
        )
        single = next(csv.DictReader((tmp_path / "a.csv").open()))
        assert Path(single["overlay"]).read_bytes() == Path(rows[name]["overlay"]).read_bytes(), (
            name
        )


def _image(tmp_path: Path) -> str:
    image = tmp_path / "a.jpg"
    image.write_bytes(samples.jpeg())
    return str(image)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (lambda tmp, image: ["--csv", str(tmp / "missing" / "out.csv")], "does not exist"),
        (lambda tmp, image: ["--csv", str(tmp)], "is a folder"),
        (lambda tmp, image: ["--heatmaps", image], "is a file, not a folder"),
        (lambda tmp, image: ["--device", "bogus"], "--device 'bogus'"),
    ],
)
def test_bad_arguments_are_one_line_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags, message: str
) -> None:
    image = _image(tmp_path)
    # A model that does not exist: the arguments are refused before it is looked for.
    argv = ["predict", image, "--no-progress", "--model", str(tmp_path / "none")]
    assert cli.main([*argv, *flags(tmp_path, image)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skinscan predict: ") and message in err and err.count("\n") == 1


def test_cuda_without_a_gpu_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], random_model_dir: Path
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    argv = ["predict", _image(tmp_path), "--model", str(random_model_dir), "--device", "cuda"]
    assert cli.main([*argv, "--no-progress"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform != "linux", reason="file names as bytes: Linux")
def test_a_file_name_that_is_not_utf8_gets_its_row(
    tmp_path: Path, random_model_dir: Path, ham_images: list[bytes]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: not UTF-8
    (folder / name).write_bytes(ham_images[0])
    (folder / "ok.jpg").write_bytes(ham_images[1])
    out = tmp_path / "out.csv"
    argv = [str(folder), "--csv", str(out), "--model", str(random_model_dir), "--no-progress"]
    assert cli.main(["predict", *argv]) == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == 3
    assert any(line.startswith(os.fsencode(folder / name) + b",") for line in lines)
