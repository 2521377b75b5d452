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


def test_output_into_a_closed_pipe_ends_quietly(
    tmp_path: Path, random_model_dir: Path, ham_images: list[bytes]
) -> None:
    for i, data in enumerate(ham_images[:4]):
        (tmp_path / f"{i}.jpg").write_bytes(data)
    argv = [sys.executable, "-m", "skinscan", "predict", str(tmp_path), "--no-progress"]
    proc = subprocess.Popen(
        [*argv, "--model", str(random_model_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first row, as `| head -0` would be
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141  # 128 + SIGPIPE, as a shell reports it
    assert err == ""


def test_invoke_with_a_bad_event_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    env = {**os.environ, "SKINSCAN_DATA_DIR": str(tmp_path / "data")}
    for event, message in ((tmp_path / "missing.json", "No such file"), (bad, "not valid JSON")):
        done = subprocess.run(
            [sys.executable, "-m", "skinscan", "invoke", "auth", "--event", str(event)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("skinscan invoke: ") and message in done.stderr
        assert done.stderr.count("\n") == 1


def test_a_function_that_raises_under_invoke_shows_its_traceback(tmp_path: Path) -> None:
    """``skinscan invoke`` is for debugging handlers: a handler that raises (here batch_start,
    whose manifest is not in the local store) prints the traceback and exits 1, as Lambda
    reports an error; it is not bad input to the command."""
    env = {**os.environ, "SKINSCAN_DATA_DIR": str(tmp_path / "data")}
    event = ROOT / "events/batch_start/manifest_created.json"
    done = subprocess.run(
        [sys.executable, "-m", "skinscan", "invoke", "batch_start", "--event", str(event)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
