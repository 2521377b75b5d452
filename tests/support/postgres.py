"""A PostgreSQL server for the tests: the one on 127.0.0.1:5432, or a throwaway one.

``SKINSCAN_TEST_PG_URL`` names a server (``postgresql+pg8000://user@host:port``) to use;
``SKINSCAN_TEST_PG=throwaway`` forces a throwaway server even when one is running.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pg8000.native

from tests.support.net import free_port

DEFAULT_URL = "postgresql+pg8000://postgres@127.0.0.1:5432"


class PostgresUnavailableError(RuntimeError):
    """Neither a running server nor the binaries to start one."""


def _reachable(host: str, port: int, user: str) -> bool:
    try:
        conn = pg8000.native.Connection(user, host=host, port=port, database="postgres", timeout=3)
    except Exception:
        return False
    conn.close()
    return True


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found and shutil.which("initdb"):
        return Path(shutil.which("initdb") or "").parent
    if not found:
        raise PostgresUnavailableError("no PostgreSQL server running and no initdb found")
    return Path(found[-1])


@contextlib.contextmanager
def throwaway_server(password: str | None = None) -> Iterator[str]:
    """initdb + pg_ctl in a temp folder, as ``nobody`` when we are root; stopped after.

    With ``password``, TCP logins need a password (scram-sha-256; the superuser ``postgres``
    gets this one, and it is in the URL), as on RDS; without, every login is trusted.
    """
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="skinscan-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        root.chmod(0o700)
        prefix = ["runuser", "-u", "nobody", "--"]
    data, sock, port = root / "data", root / "sock", free_port()
    run = lambda *cmd: subprocess.run(  # noqa: E731
        [*prefix, *map(str, cmd)], check=True, capture_output=True, cwd=root
    )
    run("mkdir", "-p", sock)
    auth = ["--auth=trust"]
    if password is not None:
        pwfile = root / "pwfile"
        pwfile.write_text(password)
        if prefix:
            shutil.chown(pwfile, "nobody")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    run(bindir / "initdb", "-D", data, "-U", "postgres", *auth, "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-o", options, "-w", "start")
    try:
        login = "postgres" if password is None else f"postgres:{quote(password, safe='')}"
        yield f"postgresql+pg8000://{login}@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """The URL (without database) of a usable server for this test session."""
    explicit = os.environ.get("SKINSCAN_TEST_PG_URL")
    if explicit:
        yield explicit.rstrip("/")
        return
    if os.environ.get("SKINSCAN_TEST_PG") != "throwaway" and _reachable(
        "127.0.0.1", 5432, "postgres"
    ):
        yield DEFAULT_URL
        return
    with throwaway_server() as url:
        yield url


def _admin(server: str) -> pg8000.native.Connection:
    from sqlalchemy.engine import make_url

    url = make_url(server + "/postgres")
    return pg8000.native.Connection(
        url.username or "postgres",
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        password=url.password,
        database="postgres",
    )


@contextlib.contextmanager
def fresh_database(server: str, prefix: str = "skinscan_test") -> Iterator[str]:
    """A new uniquely named, empty database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = _admin(server)
    try:
        conn.run(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    try:
        yield f"{server}/{name}"
    finally:
        conn = _admin(server)
        try:
            conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()
