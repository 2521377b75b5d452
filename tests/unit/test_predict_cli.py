"""``skinscan predict``: one CSV row per image, errors as rows, heatmaps on request."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

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
    assert list(rows[0]) == list(predict.COLUMNS)
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
    written = sorted(p.name for p in maps.iterdir())
    assert written == sorted(
        f"{stem}.{kind}.png"
        for stem in ("lesion0", "lesion0-2", "lesion1", "lesion2")
        for kind in ("heatmap", "overlay")
    )


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
