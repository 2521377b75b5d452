"""The ``skinscan`` command: lazy subcommands, clear errors, no torch for serve/invoke."""

from __future__ import annotations

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
    assert "test part" in capsys.readouterr().out
    assert cli.main([*args, "--doc", "card.md"]) == 2
