"""training/gpu_session.sh: the device run and the unpacking, rehearsed on the CPU.

The device tool returns at most 8 files of at most 16 MiB each, 64 MiB together; the run must
fit that and the parts must join into the model that was exported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from skinscan_engine.model_card import load_model
from tests.integration.training.conftest import make_tiny_ham

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "training" / "gpu_session.sh"
MiB = 1 << 20


def _run(tmp_path: Path, data: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(out),
        "WORK": str(tmp_path / "work"),
        "DATA": str(data),
        "DEVICE": "cpu",
        "WIDTH": "48",
        "HEIGHT": "36",
        "TRAIN_SECONDS": "60",
        "MAX_EPOCHS": "2",
        "BENCH_SIZES": "32x24",
        "BENCH_STEPS": "1",
        "VERSION": "test-gpu-session",
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), "run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    return done, out


def test_device_run_returns_a_model_within_the_tools_limits(tmp_path: Path) -> None:
    done, out = _run(tmp_path, make_tiny_ham(tmp_path / "data" / "ham10000"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    returned = sorted(out.iterdir())
    assert len(returned) <= 8
    assert all(p.stat().st_size <= 16 * MiB for p in returned)
    assert sum(p.stat().st_size for p in returned) <= 64 * MiB
    assert "explain_cost_ratio=" in done.stdout  # the inference benchmark ran

    run_dir = tmp_path / "run"
    unpacked = subprocess.run(
        ["bash", str(SCRIPT), "unpack", str(out), str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unpacked.returncode == 0, unpacked.stdout + unpacked.stderr
    loaded = load_model(run_dir / "export" / "skinscan-resnet50")
    assert loaded.card.version == "test-gpu-session"
    assert (loaded.card.input_width, loaded.card.input_height) == (48, 36)
    for name in ("log.jsonl", "train.log", "bench.txt", "training_curves.png", "split.json"):
        assert (run_dir / name).is_file(), name


def test_a_failed_run_still_returns_its_logs(tmp_path: Path) -> None:
    done, out = _run(tmp_path, tmp_path / "missing" / "ham10000")
    assert done.returncode != 0
    assert not list(out.glob("weights.part-*"))
    assert (out / "partial.tar.gz").is_file()  # what the tool returns explains the failure
    assert (out / "bench.txt").is_file()


def test_a_corrupted_part_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run" / "export"
    run_dir.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "weights.part-00").write_bytes(b"these are not the weights")
    (run_dir / "SHA256SUMS").write_text(f"{'0' * 64}  skinscan-resnet50.safetensors\n")
    subprocess.run(
        ["tar", "-czf", str(out / "run.tar.gz"), "-C", str(tmp_path / "run"), "export/SHA256SUMS"],
        check=True,
    )
    unpacked = subprocess.run(
        ["bash", str(SCRIPT), "unpack", str(out), str(tmp_path / "into")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unpacked.returncode != 0
    assert "FAILED" in unpacked.stdout + unpacked.stderr
