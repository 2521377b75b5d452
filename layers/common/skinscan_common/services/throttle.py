"""Login throttling, stored in the database so every Lambda instance sees the same count."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db.models import LoginAttempt, utcnow
from skinscan_common.security.tokens import hash_token


def _key(email: str) -> str:
    return hash_token("login:" + email)


def retry_after(session: Session, email: str) -> int:
    """Seconds until ``email`` may try again; 0 when it is not locked."""
    row = session.get(LoginAttempt, _key(email))
    if row is None or row.locked_until is None:
        return 0
    left = (row.locked_until - utcnow()).total_seconds()
    return max(0, math.ceil(left))


def record_failure(session: Session, settings: Settings, email: str) -> None:
    """Count one failed login; lock after ``login_max_failures`` within the window."""
    now: datetime = utcnow()
    row = session.get(LoginAttempt, _key(email))
    if row is None:
        row = LoginAttempt(key_hash=_key(email), failures=0, window_started_at=now)
        session.add(row)
    window = timedelta(seconds=settings.login_window_s)
    if now - row.window_started_at > window or (row.locked_until and row.locked_until <= now):
        row.failures = 0
        row.window_started_at = now
        row.locked_until = None
    row.failures += 1
    if row.failures >= settings.login_max_failures:
        row.locked_until = now + timedelta(seconds=settings.login_lockout_s)
    session.flush()


def clear(session: Session, email: str) -> None:
    """Forget failures after a successful login."""
    row = session.get(LoginAttempt, _key(email))
    if row is not None:
        session.delete(row)
        session.flush()
