"""``skinscan invoke FUNCTION --event FILE``: a Lambda handler, in-process, without Docker."""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LambdaContext:
    """Enough of the Lambda context object for Mangum and Powertools."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("function", help="directory name under functions/ (auth, history...)")
    parser.add_argument("--event", required=True, type=Path, help="API Gateway v2 event JSON")
    parser.add_argument("--token", help="access token: sets 'Authorization: Bearer TOKEN'")
    parser.add_argument(
        "--header", action="append", default=[], metavar="NAME:VALUE", help="extra header"
    )
    parser.add_argument("--body", help="replace the event's body (JSON text)")
    parser.add_argument("--path", help="replace the event's rawPath (e.g. with a real id)")
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not migrate the database first"
    )
    parser.add_argument("--raw", action="store_true", help="print the handler's answer as is")


def read_event(path: Path) -> dict[str, Any]:
    """The event file's JSON object; ValueError saying where it is not one."""
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"--event {path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"--event {path}: not UTF-8 text") from exc
    if not isinstance(event, dict):
        raise ValueError(f"--event {path}: expected a JSON object (an API Gateway v2 event)")
    return event


def prepare_event(event: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Apply --token, --header, --body and --path to an event."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if args.token:
        headers["authorization"] = f"Bearer {args.token}"
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip().lower()] = value.strip()
    event["headers"] = headers
    if args.body is not None:
        event["body"] = args.body
        event["isBase64Encoded"] = False
    if args.path:
        event["rawPath"] = args.path
        event.setdefault("requestContext", {}).setdefault("http", {})["path"] = args.path
    return event


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    """Import ``functions.<function>.app`` and call its ``handler``."""
    module = importlib.import_module(f"functions.{function}.app")
    return module.handler(event, LambdaContext(function_name=f"skinscan-{function}"))


def run(args: argparse.Namespace) -> int:
    from skinscan_common.observability import logging_to

    with logging_to(sys.stderr):  # stdout is for the handler's answer
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from skinscan_common.config import get_settings

    if not (Path("functions") / args.function).is_dir() and not _importable(args.function):
        print(f"skinscan invoke: no function {args.function!r} under functions/", file=sys.stderr)
        return 2
    event = prepare_event(read_event(args.event), args)
    if not args.no_migrate:
        from skinscan_common.db import migrate

        migrate(get_settings().database_url)
    # stdout is for the answer: what the function prints itself (its metrics) goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            response = invoke(args.function, event)
        except Exception:
            # The function itself raised (Lambda reports it as an error): the whole traceback,
            # since this command is for debugging handlers, and exit status 1.
            traceback.print_exc()
            return 1
    if args.raw:
        print(json.dumps(response, indent=2))
        return 0
    body: Any = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = f"<{len(base64.b64decode(body))} bytes, base64>"
    else:
        with contextlib.suppress(ValueError):
            body = json.loads(body)
    print(
        json.dumps(
            {
                "statusCode": response.get("statusCode"),
                "headers": response.get("headers"),
                "body": body,
            },
            indent=2,
        )
    )
    return 0 if int(response.get("statusCode", 500)) < 500 else 1


def _importable(function: str) -> bool:
    try:
        importlib.import_module(f"functions.{function}")
    except ModuleNotFoundError:
        return False
    return True
