"""The ``skinscan`` command: lazy subcommands, clear errors, no torch for serve/invoke."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from skinscan import cli


def test_registry_names_the_agreed_modules() -> None:
    assert cli.COMMANDS["serve"] == "skinscan.commands.serve"
    assert cli.COMMANDS["invoke"] == "skinscan.commands.invoke"
    assert cli.COMMANDS["train"] == "skinscan_training.cli_train"
    assert cli.COMMANDS["evaluate"] == "skinscan_training.cli_evaluate"
    assert {"predict", "batch"} <= set(cli.COMMANDS)


def test_missing_module_gives_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "predict", "skinscan.commands.does_not_exist")
    assert cli.main(["predict", "x.jpg"]) == 2
    assert "not available" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_evaluate_keeps_validation_figures_out_of_the_card(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["evaluate", "--model", "models", "--data", "x", "--part", "validation"]
    assert cli.main([*args, "--write-card"]) == 2
    assert "test part" in capsys.readouterr().err
    assert cli.main([*args, "--doc", "card.md"]) == 2


def test_help_says_predict_takes_many_images(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "one image" not in out
    assert "score images, or folders of images" in out
    assert "SKINSCAN_DEBUG=1" in out


def _failing_command(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, name: str = "predict"
) -> None:
    """``skinscan NAME`` replaced by a command whose run raises ``exc``."""

    def run(args: argparse.Namespace) -> int:
        raise exc

    fake = SimpleNamespace(add_arguments=lambda parser: None, run=run)
    monkeypatch.setattr(cli, "load_command", lambda command: fake)


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (FileNotFoundError(2, "No such file or directory", "/x/out.csv"), "/x/out.csv: No such"),
        (ValueError("--device 'bogus': use auto, cpu, cuda or cuda:N"), "--device 'bogus'"),
        (UnicodeEncodeError("utf-8", "caf\udce9", 3, 4, "surrogates"), "surrogates"),
    ],
)
def test_expected_errors_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: Exception,
    message: str,
) -> None:
    _failing_command(monkeypatch, exc)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["predict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skinscan predict: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("exc", [KeyError("train"), RuntimeError("endpoint failed")])
def test_unexpected_errors_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """A KeyError or RuntimeError from deep inside is a bug or an outage, not bad input."""
    _failing_command(monkeypatch, exc)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    with pytest.raises(type(exc)):
        cli.main(["predict"])


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_command(monkeypatch, ValueError("bad split"))
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="bad split"):
        cli.main(["predict"])


def test_a_reader_gone_away_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_command(monkeypatch, BrokenPipeError(32, "Broken pipe"))
    assert cli.main(["predict"]) == cli.BROKEN_PIPE
    assert capsys.readouterr().err == ""


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``skinscan serve`` writes its options into os.environ: put them back afterwards."""
    from skinscan_common.config import get_settings

    for name in ("SKINSCAN_HOST", "SKINSCAN_PORT", "SKINSCAN_DATA_DIR", "SKINSCAN_LOG_LEVEL"):
        # setenv first: monkeypatch then restores the variable (or its absence) afterwards,
        # also when serve sets it itself.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "99999 is not a port"),
        (["--port", "http"], "not a port number"),
        (["--log-level", "bogus"], "invalid choice"),
        (["--data-dir", "FILE"], "is a file, not a folder"),
    ],
)
def test_serve_refuses_bad_options_as_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    serve_env: None,
    args: list[str],
    message: str,
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    args = [str(a_file) if a == "FILE" else a for a in args]
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_on_a_taken_port_says_so_without_the_banner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_env: None
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().startswith(f"skinscan serve: 127.0.0.1:{port}: ")
    assert "SkinScan local stack" not in captured.out
    assert not (tmp_path / "d").exists()  # nothing was set up for a server that can't listen


def test_train_checks_its_data_before_making_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "nope"), "--out", str(run)]) == 2
    assert "--data" in capsys.readouterr().err
    (tmp_path / "ham").mkdir()
    (tmp_path / "ham" / "HAM10000_metadata.csv").write_text("image_id,lesion_id,dx\n")
    assert cli.main(["train", "--data", str(tmp_path / "ham"), "--out", str(run)]) == 2
    assert "has no images/ folder" in capsys.readouterr().err
    assert not run.exists()


def test_evaluate_with_nothing_to_do_says_so_on_stderr_and_makes_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    assert cli.main(["evaluate", "--model", "models", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "nothing to evaluate" in captured.err and captured.out == ""
    assert not out.exists()


@pytest.mark.parametrize(
    ("host", "public", "warned"),
    [
        ("0.0.0.0", "http://0.0.0.0:9000", True),
        ("::", "http://[::]:9000", True),
        ("0.0.0.0", "http://192.0.2.2:9000", False),  # SKINSCAN_PUBLIC_BASE_URL set
        ("127.0.0.1", "http://127.0.0.1:8000", False),
    ],
)
def test_serve_warns_when_links_would_name_no_address(host: str, public: str, warned: bool) -> None:
    from skinscan.commands.serve import wildcard_warning

    warning = wildcard_warning(host, 9000, public)
    assert (warning is not None) == warned
    if warning:
        assert "SKINSCAN_PUBLIC_BASE_URL=http://<this machine's address>:9000" in warning


def test_serve_does_the_housekeeping_chores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_env: None
) -> None:
    """`skinscan serve` is the local stack people run: it does what the hourly housekeeping
    function does in AWS (README), not only the app factory."""
    import skinscan.local_stack

    asked: dict[str, object] = {}

    class Stop(Exception):
        pass

    def create_app(_settings: object, **kwargs: object) -> None:
        asked.update(kwargs)
        raise Stop

    monkeypatch.setattr(skinscan.local_stack, "create_app", create_app)
    with pytest.raises(Stop):
        cli.main(["serve", "--port", "0", "--data-dir", str(tmp_path / "d")])
    assert asked.get("housekeeping") is True
