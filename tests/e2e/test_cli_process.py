"""The ``skinscan`` command as a real process: no torch for serve/invoke, invoke's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_serve_and_invoke_do_not_import_torch() -> None:
    code = (
        "import sys; from skinscan import cli; "
        "cli.build_parser(['serve']); cli.build_parser(['invoke', 'auth', '--event', 'x']); "
        "import skinscan.local_stack, functions.auth.app, functions.history.app; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_invoke_prints_the_response(tmp_path: Path) -> None:
    env_cmd = [sys.executable, "-m", "skinscan", "invoke", "auth"]
    env = {**os.environ, "SKINSCAN_DATA_DIR": str(tmp_path)}
    reg = subprocess.run(
        [*env_cmd, "--event", str(ROOT / "events/auth/register.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert reg.returncode == 0, reg.stderr
    answer = json.loads(reg.stdout)
    assert answer["statusCode"] == 201
    # The function's metrics (a CloudWatch EMF line) go to stderr, leaving stdout to the answer.
    assert '"AccountRegistered"' in reg.stderr
    token = answer["body"]["tokens"]["access_token"]
    me = subprocess.run(
        [*env_cmd, "--event", str(ROOT / "events/auth/me.json"), "--token", token],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(me.stdout)["body"]["email"] == "ada@example.com"
