"""Shared by the benchmarks: the model (shipped, or random when none is exported yet) and
real HAM10000 images from the shared data folder."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/x.py` from anywhere


def shared_data() -> Path:
    """``$SKINSCAN_SHARED_DATA`` (default ``../shared/data``; not SKINSCAN_DATA_DIR, which is
    the app's own storage folder)."""
    return Path(os.environ.get("SKINSCAN_SHARED_DATA", REPO.parent / "shared" / "data"))


def ham_paths(n: int, offset: int = 0) -> list[Path]:
    folder = shared_data() / "ham10000" / "images"
    paths = sorted(folder.glob("*.jpg"))[offset : offset + n]
    if len(paths) < n:
        raise SystemExit(f"need {n} images in {folder}; found {len(paths)}")
    return paths


def validation_ids(split: Path | None, n: int) -> list[str]:
    """The first ``n`` validation ids of ``split``, or of the split rebuilt from seed 0."""
    from skinscan_training.dataset import read_metadata
    from skinscan_training.split import model_split

    records = read_metadata(shared_data() / "ham10000")
    return model_split(records, split)["val"][:n]


def model_path(arg: str | None) -> Path:
    """``--model``, else ``$SKINSCAN_MODEL_PATH`` or ``models/``, else a random model."""
    from skinscan_engine.model_card import resolve_paths

    path = Path(arg or os.environ.get("SKINSCAN_MODEL_PATH", REPO / "models"))
    try:
        resolve_paths(path)
        return path
    except FileNotFoundError:
        if arg:
            raise
    from skinscan_engine.model import build_model
    from skinscan_engine.model_card import ModelCard, save_model

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp(prefix="skinscan-bench-model-"))
    save_model(build_model().eval(), ModelCard(version="random-untrained"), folder / "m")
    print(f"note: no trained model in {path}; using a random one (timings are still valid)")
    return folder


def timeit(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {gpu}, load average {load:.1f}"
    )
