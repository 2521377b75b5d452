"""Fixtures for the inference engine's tests: real HAM10000 images and a random model.

``tests/conftest.py`` makes the fixtures available to every test; import only the helpers.
The random model stands in until a trained one is in ``models/``; checks whose meaning
depends on trained weights (bf16 agreement, the "unknown" gate's rejection rates) use the
shipped model when there is one (see :func:`shipped_model_path`).
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pytest
import torch

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.model import CLASSES, build_model
from skinscan_engine.model_card import ModelCard, load_model, resolve_paths, save_model
from skinscan_engine.ood import LayeredGate
from skinscan_engine.preprocessing import to_batch

REPO = Path(__file__).resolve().parent.parent
# One thread: the test machine's two cores are shared (training, other test runs), and an
# oversubscribed OpenMP pool is slower than a single thread.
torch.set_num_threads(int(os.environ.get("SKINSCAN_TEST_TORCH_THREADS", "1")))
FIXTURE_HAM = REPO / "tests" / "fixtures" / "ham"


def data_dir() -> Path:
    """The shared read-only data (``$SKINSCAN_SHARED_DATA``, default ``../shared/data``).

    Not ``SKINSCAN_DATA_DIR``: that one is the app's own storage folder in the settings.
    """
    return Path(os.environ.get("SKINSCAN_SHARED_DATA", REPO.parent / "shared" / "data"))


def ham_fixture_paths() -> list[Path]:
    return sorted(FIXTURE_HAM.glob("*.jpg"))


def shared_ham_paths(limit: int) -> list[Path]:
    """Up to ``limit`` images of the shared HAM10000 copy (empty when it is absent)."""
    folder = data_dir() / "ham10000" / "images"
    return sorted(folder.glob("*.jpg"))[:limit] if folder.is_dir() else []


def shipped_model_path() -> Path | None:
    """The trained model in ``models/`` (or ``$SKINSCAN_MODEL_PATH``), if there is one."""
    path = Path(os.environ.get("SKINSCAN_MODEL_PATH", REPO / "models"))
    try:
        resolve_paths(path)
    except FileNotFoundError:
        return None
    return path


@pytest.fixture(scope="session")
def ham_images() -> list[bytes]:
    """16 real dermoscopic JPEGs (tests/fixtures/ham)."""
    paths = ham_fixture_paths()
    assert len(paths) >= 8, "tests/fixtures/ham should hold at least 8 JPEGs"
    return [p.read_bytes() for p in paths]


@functools.cache
def _random_model_dir() -> Path:
    """Built once per test process (fixtures imported into several modules share it)."""
    torch.manual_seed(0)
    network = build_model().eval()
    folder = Path(tempfile.mkdtemp(prefix="skinscan-random-model-"))
    save_model(network, ModelCard(version="test-random"), folder / "m")
    # Fit the gate on this network's own features of real images (labels cycle over the
    # classes so each class has a centre), and reject at most 5% of them.
    engine = Engine.from_path(folder, EngineConfig(device="cpu", precision="fp32"))
    batch = [engine.prepare(p.read_bytes()).pixels for p in ham_fixture_paths()]
    with torch.inference_mode():
        _, features, _ = engine.forward(to_batch(batch))
    labels = torch.arange(len(batch)) % len(CLASSES)
    gate = LayeredGate.fit(features, labels, len(CLASSES), val=features)
    gate.calibrate(gate.score(features), max_reject=0.05)
    card = ModelCard(version="test-random")
    save_model(load_model(folder).network, card, folder / "m", gate=gate)
    return folder


@functools.cache
def _engine(precision: str) -> Engine:
    return Engine.from_path(_random_model_dir(), EngineConfig(device="cpu", precision=precision))


@pytest.fixture(scope="session")
def random_model_dir() -> Path:
    """A randomly initialised model with a Mahalanobis gate fitted on the fixture images."""
    return _random_model_dir()


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The engine on the random model, CPU, default precision (bf16 where native).

    Shared: tests that change its thresholds restore them.
    """
    return _engine("auto")


@pytest.fixture(scope="session")
def engine_fp32() -> Engine:
    return _engine("fp32")
