"""Every benchmark under bench/ loads with what `make test` installs.

The benchmarks are run by hand, not by CI; without this a renamed dependency (httpx became
httpx2) breaks one unnoticed until someone needs its figures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_the_benchmarks_are_found() -> None:
    assert {"serving.py", "explain_cost.py", "heatmap_check.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_benchmark_loads_and_has_a_main(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their shared `_common`
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the imports, not main()
    assert callable(getattr(module, "main", None))
