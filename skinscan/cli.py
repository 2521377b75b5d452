"""``skinscan``: one command, subcommands imported only when used (no torch for ``serve``)."""

from __future__ import annotations

import argparse
import importlib
import os
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
    "predict": "score images, or folders of images, with the local model (CSV out)",
    "batch": "score a folder of images as a resumable batch job",
    "train": "train the model",
    "evaluate": "evaluate a trained model",
    "fit-gate": 'fit the "unknown" gate of a trained model again (weights unchanged)',
}


#: What a command raises for bad input (a missing file, a malformed split, no GPU...): one
#: line on stderr and exit status 2 instead of a traceback. Commands raise ValueError for what
#: they check themselves (json.JSONDecodeError is one); anything else (a KeyError, a
#: RuntimeError from deep inside) is a bug or an outage and keeps its traceback and exit 1.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError)
#: Exit status when the reader of stdout went away (``| head``): 128 + SIGPIPE, as a shell says.
BROKEN_PIPE = 141
DEBUG_ENV = "SKINSCAN_DEBUG"


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
    parser = argparse.ArgumentParser(
        prog="skinscan",
        description="SkinScan skin-lesion triage",
        epilog=f"Errors are one line on stderr (exit status 2); {DEBUG_ENV}=1 shows the traceback.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = _selected(argv)
    for name in COMMANDS:
        sub_parser = sub.add_parser(name, help=HELP.get(name, ""))
        if name == selected:
            load_command(name).add_arguments(sub_parser)
    return parser


def error_message(exc: BaseException) -> str:
    """One line for an expected error: ``path: reason`` for a file error, else its text."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the flush at exit would hit the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (tests' captured stdout)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skinscan`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _selected(argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        code = int(load_command(args.command).run(args) or 0)
        # Flushed here, not at exit, so that a reader gone away is a BrokenPipeError caught below.
        sys.stdout.flush()
        return code
    except CommandUnavailableError as exc:
        print(f"skinscan: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (``skinscan predict ... | head``): nothing more to say to anyone.
        _silence_stdout()
        return BROKEN_PIPE
    except EXPECTED_ERRORS as exc:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        prefix = f"skinscan {name}" if name else "skinscan"
        print(f"{prefix}: {error_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
