"""``skinscan serve``: the local stack on 127.0.0.1:8000 with uvicorn."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--data-dir", type=Path, help="SQLite, objects and secret (./.skinscan)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING... (default INFO)")


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


def run(args: argparse.Namespace) -> int:
    apply_overrides(args)
    import uvicorn

    from skinscan_common.config import get_settings
    from skinscan_common.observability import set_log_level

    get_settings.cache_clear()
    settings = get_settings()
    set_log_level(settings.log_level)

    from skinscan.local_stack import create_app

    app = create_app(settings, preload_model=settings.preload_model)
    print(f"SkinScan local stack on http://{settings.host}:{settings.port}  (docs: /docs)")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
    )
    return 0
