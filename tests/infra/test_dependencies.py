"""What the code imports is what its packages install: the Lambda layer and the container image.

Each artefact lists its own third-party packages (``layers/common/requirements.txt`` for the
functions, the Dockerfile's ``pip install`` for the inference container) apart from
pyproject.toml, which the tests install. A package missing there is invisible in the tests'
virtualenv and breaks the deployed code at import. So: import every function (and the
container's server) in a fresh interpreter, map each loaded module to the distribution that
installed it, and check that each one is in the closure of what the artefact installs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
# What the Lambda Python runtime provides without a layer.
LAMBDA_RUNTIME = ["boto3"]
# What the container's base image (pytorch/pytorch) provides: torch and what torch requires.
BASE_IMAGE = ["torch"]
# Loaded here only because the tests' virtualenv has them; each importer works without them.
OPTIONAL = {
    "certifi",  # botocore: its own CA bundle otherwise
    "cryptography",  # PyJWT: RSA/EC keys; our tokens are HS256
    "numpy",  # fpdf2: faster image parsing (the layer; the container installs numpy)
    "pygments",  # Mako (Alembic's templates): syntax highlighting
    "setuptools",  # the interpreter's distutils shim (a .pth file), not our code
    "tqdm",  # torch.hub: download progress (the container downloads nothing)
    "defusedxml",  # torchvision.datasets.voc: safer XML parsing (no datasets in the container)
    "python-multipart",  # Starlette: form parsing (the container's routes take no forms)
}

_LOADED = """
import importlib, json, sys
from importlib import metadata
for name in sys.argv[1:]:
    importlib.import_module(name)
owners = metadata.packages_distributions()
found = {d for m in list(sys.modules) for d in owners.get(m.partition(".")[0], [])}
print(json.dumps(sorted(found)))
"""


def _loaded_distributions(*modules: str) -> set[str]:
    """Distributions whose modules are loaded after importing ``modules`` in a new process."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    own = {"skinscan"}  # this project's packages (layer, engine, CLI): installed editable
    return {canonicalize_name(d) for d in json.loads(done.stdout)} - own - OPTIONAL


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution installing ``requirements`` brings, by the installed metadata."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here, so nothing of it can be loaded either
        for child in dist.requires or []:
            child_req = Requirement(child)
            extras = req.extras or {""}
            for wanted in extras | {""}:
                todo.append((child_req, wanted))
    return {n for n in seen if "[" not in n}


def _layer_requirements() -> list[str]:
    lines = (ROOT / "layers/common/requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _dockerfile_requirements() -> list[str]:
    text = (ROOT / "inference_container/Dockerfile").read_text()
    runs = re.findall(r"^RUN pip install(?:.*\\\n)*.*$", text, flags=re.MULTILINE)
    assert runs, "the Dockerfile's pip install"
    return [req for run in runs for req in re.findall(r'"([^"]+)"', run)]


def test_the_layer_installs_what_every_function_imports() -> None:
    loaded = _loaded_distributions(*(f"functions.{name}.app" for name in FUNCTIONS))
    missing = loaded - _closure(_layer_requirements() + LAMBDA_RUNTIME)
    assert not missing, f"add to layers/common/requirements.txt: {sorted(missing)}"


def test_the_container_installs_what_its_server_imports() -> None:
    pytest.importorskip("torch")
    loaded = _loaded_distributions("skinscan_engine.server")
    missing = loaded - _closure(_dockerfile_requirements() + BASE_IMAGE)
    assert not missing, f"add to inference_container/Dockerfile's pip install: {sorted(missing)}"


def test_the_layer_and_the_project_agree() -> None:
    """The layer's list is pyproject's minus what only the local stack and the CLI use."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = lambda reqs: {canonicalize_name(Requirement(r).name) for r in reqs}  # noqa: E731
    local_only = {"boto3", "uvicorn", "numpy", "tqdm", "pillow"}
    assert names(_layer_requirements()) == names(project) - local_only
