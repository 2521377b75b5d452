"""``skinscan batch``: a folder of real images, interrupted and restarted, every image once."""

from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from skinscan.commands import batch as batch_cmd
from skinscan.commands.predict import COLUMNS
from skinscan_common.services.batch import ChunkReport
from tests.engine_fixtures import ham_fixture_paths, shared_ham_paths

REPO = Path(__file__).resolve().parents[2]


def _folder(tmp_path: Path, count: int) -> Path:
    """``count`` real HAM10000 photos (links to distinct shared ones, else fixture copies)."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shared = shared_ham_paths(count)
    fixtures = ham_fixture_paths()
    for i in range(count):
        target = folder / ("sub" if i % 5 == 0 else "") / f"img-{i:03d}.jpg"
        if len(shared) >= count:
            target.symlink_to(shared[i])
        else:
            target.write_bytes(fixtures[i % len(fixtures)].read_bytes())
    return folder


def _results(folder: Path) -> list[dict[str, str]]:
    with (folder / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and tuple(rows[0]) == COLUMNS
    return rows


def _done(folder: Path) -> int:
    path = folder / batch_cmd.STATE_DIR / "state.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as conn:
            return conn.execute(
                "SELECT count(*) FROM batch_items WHERE status = 'done'"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture(name="model_dir")
def model_dir_fixture(request: pytest.FixtureRequest) -> Path:
    """The random-weights test model (the trained one is not needed to test batching)."""
    return request.getfixturevalue("random_model_dir")


class Crash(Exception):
    pass


@pytest.mark.slow
def test_interrupted_batch_resumes_without_scoring_twice(tmp_path: Path, model_dir: Path) -> None:
    folder = _folder(tmp_path, 52)
    (folder / "notes.txt").write_text("not an image, not listed")
    options = batch_cmd.Options(
        model=str(model_dir), chunk_size=8, batch_size=4, progress=False, device="cpu"
    )
    seen: list[ChunkReport] = []

    def crash_after_three(report: ChunkReport) -> None:
        seen.append(report)
        if len(seen) == 3:
            raise Crash

    with pytest.raises(Crash):
        batch_cmd.score_folder(folder, options, on_chunk=crash_after_three)
    assert sum(r.scored for r in seen) == 24 == _done(folder)
    assert not (folder / "results.csv").exists()

    summary = batch_cmd.score_folder(folder, options)
    assert (summary.total, summary.scored, summary.errors) == (52, 52 - 24, 0)
    rows = _results(folder)
    images = [r["image"] for r in rows]
    assert len(images) == len(set(images)) == 52
    assert "sub/img-000.jpg" in images and not any(".skinscan-batch" in i for i in images)
    assert {r["verdict"] for r in rows} <= {"benign", "malignant", "unknown"}
    # Once more: nothing left to score, same results.
    again = batch_cmd.score_folder(folder, options)
    assert again.scored == 0 and _results(folder) == rows


def test_manifest_with_heatmaps_and_bad_lines(tmp_path: Path, model_dir: Path) -> None:
    folder = _folder(tmp_path, 3)
    (folder / "broken.jpg").write_bytes(b"<html>")
    manifest = folder / "list.csv"
    manifest.write_text("image\nimg-001.jpg\nbroken.jpg\nmissing.jpg\nsub/img-000.jpg\n")
    heatmaps = tmp_path / "maps"
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "skinscan",
            "batch",
            str(manifest),
            "--model",
            str(model_dir),
            "--heatmaps",
            str(heatmaps),
            "--no-progress",
            "--device",
            "cpu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert code.returncode == 1, code.stderr  # some rows are errors
    rows = _results(folder)
    assert [r["image"] for r in rows] == [
        "img-001.jpg",
        "broken.jpg",
        "missing.jpg",
        "sub/img-000.jpg",
    ]
    assert rows[1]["verdict"] == "error" and "not an image" in rows[1]["error"]
    assert rows[2]["verdict"] == "error" and rows[2]["error"] == "no such image"
    assert (heatmaps / "sub" / "img-000.jpg.overlay.png").read_bytes().startswith(b"\x89PNG")
    assert (heatmaps / "img-001.jpg.heatmap.png").exists()
    assert "scored 4 now" in code.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "skinscan", "batch", str(tmp_path / "nope")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "neither a folder nor a manifest" in bad.stderr


@pytest.mark.slow
def test_killed_batch_process_restarts_and_finishes(tmp_path: Path, model_dir: Path) -> None:
    folder = _folder(tmp_path, 50)
    command = [
        sys.executable,
        "-m",
        "skinscan",
        "batch",
        str(folder),
        "--model",
        str(model_dir),
        "--chunk-size",
        "4",
        "--batch-size",
        "4",
        "--no-progress",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "SKINSCAN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and _done(folder) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = _done(folder)
    assert not killed or before < 50

    finish = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert finish.returncode == 0, finish.stderr
    scored_now = int(re.search(r"scored (\d+) now", finish.stderr).group(1))  # type: ignore[union-attr]
    assert scored_now == 50 - before  # nothing scored before the kill was scored again
    images = [r["image"] for r in _results(folder)]
    assert len(images) == len(set(images)) == 50


def test_stdout_carries_no_log_lines(tmp_path: Path, model_dir: Path) -> None:
    """Logs go to stderr with the summary: stdout is left to whoever pipes it."""
    folder = _folder(tmp_path, 3)
    command = [sys.executable, "-m", "skinscan", "batch", str(folder), "--model", str(model_dir)]
    done = subprocess.run(
        [*command, "--no-progress", "--device", "cpu"],
        cwd=REPO,
        env={**os.environ, "SKINSCAN_LOG_LEVEL": "INFO"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert '"level"' not in done.stdout
    assert '"batch job finished"' in done.stderr


# -- with a stand-in model: what the command finds, counts and says ----------------------------


class FakeService:
    """``ScoringService.answer_many`` without a model; a batch holding ``poison`` fails whole
    (as a CUDA error would)."""

    def __init__(self, poison: bytes | None = None) -> None:
        self.poison = poison

    def answer_many(self, images: list[bytes]) -> list[dict[str, Any]]:
        if self.poison is not None and self.poison in images:
            raise RuntimeError("CUDA error: device-side assert")
        png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
        answer = {
            "verdict": "benign",
            "p_malignant": 0.1,
            "confidence": 0.9,
            "top_class": "nv",
            "probabilities": {"nv": 0.9},
            "ood_score": 1.0,
            "model_version": "fake",
            "heatmap_png": png,
            "overlay_png": png,
        }
        return [answer for _ in images]

    def close(self) -> None:
        pass


def _photos(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "photos"
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(f"JPEG {name}".encode())
    return folder


def _use(monkeypatch: pytest.MonkeyPatch, service: FakeService) -> None:
    monkeypatch.setattr(batch_cmd, "_service", lambda _options: service)


def test_heatmaps_written_into_the_folder_are_not_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _photos(tmp_path, ["a.jpg", "sub/b.jpg"])
    _use(monkeypatch, FakeService())
    command = [str(folder), "--heatmaps", str(folder / "heatmaps"), "--no-progress"]
    for _run in range(2):
        assert batch_cmd.main(command) == 0
        assert [r["image"] for r in _results(folder)] == ["a.jpg", "sub/b.jpg"]
    assert (folder / "heatmaps" / "sub" / "b.jpg.overlay.png").exists()
    # Without --heatmaps, the PNGs it wrote are still outputs, not photos.
    assert batch_cmd.main([str(folder), "--no-progress"]) == 0
    assert len(_results(folder)) == 2
    # Heatmaps beside the photos (or in a folder above them): told apart by their names.
    beside = _photos(tmp_path / "beside", ["a.jpg", "sub/b.jpg"])
    for maps in (beside, beside.parent):
        assert batch_cmd.main([str(beside), "--heatmaps", str(maps), "--no-progress"]) == 0
        assert [r["image"] for r in _results(beside)] == ["a.jpg", "sub/b.jpg"]
        assert (beside / "sub" / "b.jpg.heatmap.png").exists()


def test_summary_counts_from_the_job_when_a_chunk_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [f"img{i}.jpg" for i in range(8)]
    folder = _photos(tmp_path, names)
    _use(monkeypatch, FakeService(poison=b"JPEG img5.jpg"))
    command = [str(folder), "--chunk-size", "4", "--batch-size", "2", "--no-progress"]
    assert batch_cmd.main([*command, "--retries", "1"]) == 1
    err = capsys.readouterr().err
    assert "chunk 1 failed" in err
    assert "8 images, scored 6 now, 0 scored before; 2 errors" in err  # img4, img5
    assert [r["verdict"] for r in _results(folder)][4:6] == ["error", "error"]
    _use(monkeypatch, FakeService())
    assert batch_cmd.main(command) == 0
    assert "8 images, scored 2 now, 6 scored before; 0 errors" in capsys.readouterr().err


def test_bad_manifests_and_bad_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _photos(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    _use(monkeypatch, FakeService())
    manifest = folder / "list.csv"
    manifest.write_text("image\na.jpg\n" + "x" * 200_000 + '\n"b.jpg\nc.jpg\n')
    assert batch_cmd.main([str(manifest), "--no-progress"]) == 1  # some rows are errors
    rows = _results(folder)
    assert [r["image"] for r in rows][::2] == ["a.jpg", '"b.jpg']
    assert rows[-1] == {**rows[0], "image": "c.jpg"}  # the lines after a stray quote: scored
    assert "line 3: not a CSV line (field larger" in rows[1]["error"]
    assert len(rows[1]["image"].encode()) < 1024
    assert rows[2]["verdict"] == "error" and "line 4: not a CSV line" in rows[2]["error"]
    assert "Traceback" not in capsys.readouterr().err
    manifest.write_text("image\na.jpg\n", encoding="utf-16")  # Excel's "Unicode text"
    assert batch_cmd.main([str(manifest), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"skinscan batch: {manifest}: the manifest is not UTF-8 text\n"
