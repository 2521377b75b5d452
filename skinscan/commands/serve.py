"""``skinscan serve``: the local stack on 127.0.0.1:8000 with uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _port(text: str) -> int:
    """A TCP port number (argparse reports the ArgumentTypeError as a usage error)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _data_dir(text: str) -> Path:
    """A folder, existing or to be made; a file there is refused now, not at first write."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="port (default 8000)")
    parser.add_argument(
        "--data-dir", type=_data_dir, help="SQLite, objects and secret (./.skinscan)"
    )
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, help="default INFO")


def apply_overrides(args: argparse.Namespace) -> None:
    """Command-line options win over the environment; all code then sees one Settings."""
    overrides = {
        "SKINSCAN_HOST": args.host,
        "SKINSCAN_PORT": args.port,
        "SKINSCAN_DATA_DIR": args.data_dir and str(args.data_dir.resolve()),
        "SKINSCAN_LOG_LEVEL": args.log_level,
    }
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = str(value)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced (OSError: port taken...)."""
    if not 0 <= port <= 65535:  # SKINSCAN_PORT is not checked by argparse
        raise ValueError(f"port {port} is not a port (0 to 65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restart may reuse a port whose old connections are in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        # Named by the address, so that the one-line error says what could not be bound.
        raise OSError(exc.errno, exc.strerror, f"{host}:{port}") from exc
    return sock


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def wildcard_warning(host: str, port: int, public_base_url: str) -> str | None:
    """What to say when links would name an address no other machine can open (0.0.0.0)."""
    if host not in WILDCARD_HOSTS:
        return None
    named = urlsplit(public_base_url).hostname or ""
    if named not in WILDCARD_HOSTS:
        return None  # SKINSCAN_PUBLIC_BASE_URL names a real address
    return (
        f"skinscan serve: listening on all interfaces, but photo and heatmap links would name "
        f"{public_base_url}, which other machines cannot open: set "
        f"SKINSCAN_PUBLIC_BASE_URL=http://<this machine's address>:{port}"
    )


def run(args: argparse.Namespace) -> int:
    apply_overrides(args)
    import uvicorn

    from skinscan_common.config import get_settings
    from skinscan_common.observability import set_log_level

    get_settings.cache_clear()
    settings = get_settings()
    set_log_level(settings.log_level)
    sock = bind(settings.host, settings.port)

    from skinscan.local_stack import create_app

    try:
        app = create_app(settings, preload_model=settings.preload_model, housekeeping=True)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
            proxy_headers=False,
        )
        server = uvicorn.Server(config)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]  # the one chosen when asked for port 0
    warning = wildcard_warning(settings.host, port, settings.public_base_url)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"SkinScan local stack on http://{settings.host}:{port}  (docs: /docs)", flush=True)
    # uvicorn serves the socket bound above (and closes it at shutdown).
    # Ctrl+C is how one stops it: a normal end (exit 0), as in uvicorn.run.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0 if server.started else 1
