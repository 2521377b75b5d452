"""Migrations: ``upgrade head`` on empty databases, and models == migrations."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from skinscan_common.db import Base, create_db_engine, migrate
from tests.support import postgres

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"users", "refresh_tokens", "predictions", "login_attempts", "alembic_version"}


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'empty.db').as_posix()}"
        return
    server = request.getfixturevalue("pg_server")
    with postgres.fresh_database(server, prefix="skinscan_migr") as url:
        yield url


def test_upgrade_head_then_no_diff(empty_db: str) -> None:
    migrate(empty_db)
    migrate(empty_db)  # idempotent
    engine = create_db_engine(empty_db)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "target_metadata": Base.metadata}
            )
            assert compare_metadata(ctx, Base.metadata) == []
    finally:
        engine.dispose()


def test_alembic_command_line(empty_db: str) -> None:
    """``alembic upgrade head`` from the repository root, as documented."""
    env = {**os.environ, "SKINSCAN_DATABASE_URL": empty_db}
    for args in (["upgrade", "head"], ["check"], ["current"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert "0003 (head)" in done.stdout + done.stderr


def test_migrate_function_upgrades_an_empty_database(
    empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """functions/migrate (run once after a deploy) brings an empty database to head."""
    from functions.migrate.app import handler
    from skinscan_common.config import get_settings

    monkeypatch.setenv("SKINSCAN_DATABASE_URL", empty_db)
    get_settings.cache_clear()
    try:
        assert handler({"action": "current"})["revision"] is None
        upgraded = handler({})
        assert upgraded["status"] == "ok" and upgraded["revision"]
        assert handler({"action": "current"}) == upgraded
    finally:
        get_settings.cache_clear()


def test_migration_outwaits_the_request_timeout(
    pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration waiting on a lock held by live traffic is not cut off by the short timeout
    that requests get (engine.PG_SOCKET_TIMEOUT_S); it waits and then completes."""
    from skinscan_common.db import engine as engine_module

    with postgres.fresh_database(pg_server, prefix="skinscan_migr") as url:
        migrate(url)
        monkeypatch.setattr(engine_module, "PG_SOCKET_TIMEOUT_S", 0.5)
        holder = create_db_engine(url, connect_args={"timeout": 30})
        released = threading.Event()

        def hold_lock() -> None:
            with holder.begin() as conn:
                conn.exec_driver_sql("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
                locked.set()
                released.wait(timeout=30)
                time.sleep(1.5)  # the migration is waiting on the lock by now

        locked = threading.Event()
        thread = threading.Thread(target=hold_lock)
        thread.start()
        try:
            assert locked.wait(timeout=30)
            released.set()
            migrate(url)  # blocks on the lock for about 1.5 s, three times the request timeout
        finally:
            released.set()
            thread.join(timeout=30)
            holder.dispose()
        with create_db_engine(url).connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() is not None
