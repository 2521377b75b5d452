"""bench/heatmap_check.py end to end: scores validation images, writes the figures and the sheet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.integration.training.conftest import make_tiny_ham

REPO = Path(__file__).resolve().parents[3]


def test_the_heatmap_check_writes_figures_a_card_sentence_and_a_picture(tmp_path: Path) -> None:
    make_tiny_ham(tmp_path / "shared" / "ham10000")
    out_json, sheet = tmp_path / "heatmaps.json", tmp_path / "heatmaps.png"
    env = {**os.environ, "SKINSCAN_SHARED_DATA": str(tmp_path / "shared")}
    args = ["--val-images", "10", "--json", str(out_json), "--sheet", str(sheet)]
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "heatmap_check.py"), *args, "--sheet-images", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out_json.read_text())
    assert 5 <= report["scored"] <= 10  # the tiny set's validation part has fewer than 10
    assert 0 < report["all"]["images"] <= report["scored"]  # the generated blobs are outlined
    assert 0.0 <= report["all"]["heatmap_share_on_lesion"] <= 1.0
    assert -1.0 <= report["pattern"]["correlation"] <= 1.0
    assert report["summary"] in done.stdout
    with Image.open(sheet) as image:
        assert image.mode == "P"  # 256 colours: small enough to commit
        assert image.width > image.height  # six panels to a row
