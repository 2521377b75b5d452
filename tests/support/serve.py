"""``skinscan serve`` as a real process, for the tests that talk to it over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_serve(
    data_dir: Path, env: Mapping[str, str], log: Path, timeout: float = 300
) -> Iterator[str]:
    """Start ``skinscan serve`` on a free port, yield its base URL once healthy, stop it after.

    Its output goes to ``log``; a server that exits or never answers fails the test with the
    end of that log.
    """
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skinscan", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--data-dir", str(data_dir)],
            cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"skinscan serve exited ({proc.returncode}):\n{_tail(log)}")
        try:
            if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"skinscan serve not healthy after {timeout}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]
