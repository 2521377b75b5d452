"""``skinscan``: one command, subcommands imported only when used (no torch for ``serve``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

# name -> module exposing add_arguments(parser) and run(args) -> int
COMMANDS: dict[str, str] = {
    "serve": "skinscan.commands.serve",
    "invoke": "skinscan.commands.invoke",
    "predict": "skinscan.commands.predict",
    "batch": "skinscan.commands.batch",
    "train": "skinscan_training.cli_train",
    "evaluate": "skinscan_training.cli_evaluate",
    "fit-gate": "skinscan_training.gate",
}

HELP: dict[str, str] = {
    "serve": "run the local stack (every function in one app)",
    "invoke": "run a function's Lambda handler in-process with an API Gateway event",
    "predict": "score one image with the local model",
    "batch": "score a folder of images",
    "train": "train the model",
    "evaluate": "evaluate a trained model",
    "fit-gate": 'fit the "unknown" gate of a trained model again (weights unchanged)',
}


class CommandUnavailableError(RuntimeError):
    """The command's module is not installed (yet)."""


def load_command(name: str) -> ModuleType:
    """Import the module behind ``name``, with a clear error when it is missing."""
    module_name = COMMANDS[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise CommandUnavailableError(
                f"`skinscan {name}` is not available: module {module_name} is not installed"
            ) from exc
        raise CommandUnavailableError(
            f"`skinscan {name}` needs the Python package {missing!r}: "
            "install it (for the model: pip install -e '.[ml]')"
        ) from exc


def _selected(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser; only the selected command's module is imported for its arguments."""
    parser = argparse.ArgumentParser(prog="skinscan", description="SkinScan skin-lesion triage")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = _selected(argv)
    for name in COMMANDS:
        sub_parser = sub.add_parser(name, help=HELP.get(name, ""))
        if name == selected:
            load_command(name).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skinscan`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return int(load_command(args.command).run(args) or 0)
    except CommandUnavailableError as exc:
        print(f"skinscan: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
