"""Login (and sign-up) throttling, stored in the database so every Lambda instance sees the
same count.

An attempt is counted *before* its password is checked, in one atomic statement committed at
once: parallel requests (one client's, or many Lambda instances') each take a number, and only
the first ``login_max_failures`` of a window get their password checked. A success forgets the
count. Counting after the check, with a read and a write, let parallel guesses overwrite each
other's counts and slip past the lockout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, case, literal, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db.models import LoginAttempt, utcnow
from skinscan_common.db.types import UTCDateTime
from skinscan_common.security.tokens import hash_token

_INSERTS = {"postgresql": pg_insert, "sqlite": sqlite_insert}


@dataclass(frozen=True)
class Limit:
    """How many attempts a window allows, and how long the lockout past them lasts."""

    attempts: int
    window_s: int
    lockout_s: int


def limits(settings: Settings) -> dict[str, Limit]:
    """Every count kept in ``login_attempts``, by kind (the prefix of its hashed key):
    logins per email; sign-ups and upload forms per client network address."""
    return {
        "login": Limit(
            settings.login_max_failures, settings.login_window_s, settings.login_lockout_s
        ),
        "register": Limit(
            settings.register_max_per_client, settings.register_window_s, settings.register_window_s
        ),
        "upload": Limit(
            settings.upload_forms_per_client,
            settings.upload_forms_window_s,
            settings.upload_forms_window_s,
        ),
    }


def _key(kind: str, subject: str) -> str:
    return hash_token(f"{kind}:{subject}")


def begin(session: Session, settings: Settings, kind: str, subject: str) -> int:
    """Count one attempt of ``kind`` for ``subject``; the seconds to wait if it is refused,
    else 0. Commits the session: the count must stand whatever the attempt's outcome.

    ``register`` and ``upload`` count every attempt, a success too: that slows down mass
    sign-ups, finding out who has an account from "email taken", and piling up pending
    predictions faster than housekeeping deletes those whose photo never came.
    """
    return _count(session, _key(kind, subject), limits(settings)[kind])


def begin_attempt(session: Session, settings: Settings, email: str) -> int:
    """Count one login attempt for ``email`` (:func:`begin`). The attempt that reaches
    ``login_max_failures`` is still checked and sets the lockout; later ones are refused."""
    return begin(session, settings, "login", email)


def _count(session: Session, key: str, limit: Limit) -> int:
    """Count one attempt under ``key``: 0 if it may go on, else the seconds to wait (commits)."""
    now = utcnow()
    insert = _INSERTS[session.get_bind().dialect.name]
    session.execute(
        insert(LoginAttempt)
        .values(key_hash=key, failures=0, window_started_at=now)
        .on_conflict_do_nothing(index_elements=["key_hash"])
    )
    # A window that ran out, or a lockout that ended, starts the count again.
    fresh = or_(
        LoginAttempt.window_started_at < now - timedelta(seconds=limit.window_s),
        and_(LoginAttempt.locked_until.is_not(None), LoginAttempt.locked_until <= now),
    )
    count = case((fresh, 1), else_=LoginAttempt.failures + 1)
    # Typed like the columns, so SQLite stores them in the columns' own (naive UTC) form.
    started, lock_end = (
        literal(value, UTCDateTime()) for value in (now, now + timedelta(seconds=limit.lockout_s))
    )
    counted = session.execute(
        update(LoginAttempt)
        .where(
            LoginAttempt.key_hash == key,
            or_(LoginAttempt.locked_until.is_(None), LoginAttempt.locked_until <= now),
        )
        .values(
            failures=count,
            window_started_at=case((fresh, started), else_=LoginAttempt.window_started_at),
            locked_until=case((count >= limit.attempts, lock_end), else_=None),
        )
        .returning(LoginAttempt.key_hash)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    session.commit()
    if counted is not None:
        return 0
    # Not counted: locked (or, rarely, cleared by a success in between: then go on).
    row = session.get(LoginAttempt, key, populate_existing=True)
    if row is None or row.locked_until is None:
        return 0
    return max(1, math.ceil((row.locked_until - utcnow()).total_seconds()))


def clear(session: Session, email: str) -> None:
    """Forget the attempts after a successful login."""
    row = session.get(LoginAttempt, _key("login", email))
    if row is not None:
        session.delete(row)
        session.flush()
