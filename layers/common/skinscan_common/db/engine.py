"""One engine factory for ``postgresql+pg8000://`` and ``sqlite://`` URLs, and sessions."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from skinscan_common.cache import KeyedCache
from skinscan_common.db.credentials import connect_with, credentials_for
from skinscan_common.db.url import REGION_PARAM, SECRET_PARAM

_engines: KeyedCache[Engine] = KeyedCache()

# pg8000's socket timeout, for connecting and for every reply: a database that is unreachable or
# silent fails a request within seconds, answered 503 (errors.py), instead of holding it until
# the client or the Lambda timeout (29 s) gives up. Our queries answer in milliseconds.
PG_SOCKET_TIMEOUT_S = 10.0

# Migrations may rewrite a table or wait for a lock held by live requests: one statement may take
# minutes. Still bounded, below functions/migrate's Lambda timeout (300 s), so an unreachable
# database fails the run with a clear error rather than a killed invocation.
PG_MIGRATION_SOCKET_TIMEOUT_S = 240.0


def normalise_url(url: str) -> str:
    """Use the pure-Python pg8000 driver for any ``postgres(ql)://`` URL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+pg8000://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def _ssl_context(sslmode: str) -> ssl.SSLContext:
    """``verify-full`` checks the certificate; ``require`` only encrypts (as libpq does)."""
    context = ssl.create_default_context()
    if sslmode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def create_db_engine(url: str, *, socket_timeout: float | None = None, **kwargs: Any) -> Engine:
    """A new engine; SQLite gets foreign keys ON and WAL, its folder is created.

    ``socket_timeout`` bounds connecting to PostgreSQL and waiting for each of its replies, in
    seconds; left out, it is ``PG_SOCKET_TIMEOUT_S``. Its errors never quote the statement's
    parameters (``hide_parameters``).
    """
    # A failed INSERT INTO users would otherwise carry "[parameters: (..., email, password
    # hash)]" in its message, and so into every log line and trace that shows the error.
    kwargs.setdefault("hide_parameters", True)
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("connect_args", {"check_same_thread": False})
        else:
            kwargs.setdefault("connect_args", {"check_same_thread": False})
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    sslmode = parsed.query.get("sslmode")
    if sslmode in ("require", "verify-full"):
        # pg8000 takes an SSLContext, not libpq's sslmode.
        kwargs.setdefault("connect_args", {})["ssl_context"] = _ssl_context(sslmode)
    secret = parsed.query.get(SECRET_PARAM)
    credentials = credentials_for(secret, parsed.query.get(REGION_PARAM, "")) if secret else None
    parsed = parsed.difference_update_query(["sslmode", SECRET_PARAM, REGION_PARAM])
    url = parsed.render_as_string(hide_password=False)
    kwargs.setdefault("connect_args", {}).setdefault(
        "timeout", PG_SOCKET_TIMEOUT_S if socket_timeout is None else socket_timeout
    )
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 2)
    kwargs.setdefault("max_overflow", 3)
    kwargs.setdefault("pool_recycle", 300)
    engine = create_engine(url, **kwargs)
    if credentials is not None:
        connect_with(engine, credentials)
    return engine


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (reused across Lambda invocations)."""
    url = normalise_url(url)
    return _engines.get(url, lambda: create_db_engine(url))


def dispose_engines() -> None:
    """Close every cached engine (tests, shutdown)."""
    _engines.clear(close=Engine.dispose)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
