"""A scan being stored while its account is deleted: nothing of it may outlive the account.

PostgreSQL only: the race is between two transactions, which SQLite runs one after the other.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import get_engine, session_factory
from skinscan_common.errors import UnauthorizedError
from skinscan_common.services import accounts, scoring
from skinscan_common.storage import ObjectStore
from tests import image_samples as samples
from tests.integration.conftest import result

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _answer() -> dict[str, Any]:
    return {**result(), "heatmap_png": b"\x89PNG heat", "overlay_png": b"\x89PNG over"}


def _store_scan(session: Session, store: ObjectStore, user_id: Any) -> None:
    """A scan of ``user_id`` stored as ``POST /v1/predict`` stores it (not committed)."""
    scoring.store_prediction(
        session,
        store,
        owner_id=user_id,
        image=samples.jpeg(),
        content_type="image/jpeg",
        answer=_answer(),
    )


def test_a_scan_stored_while_its_account_is_deleted_leaves_nothing(
    settings: Settings, store: ObjectStore
) -> None:
    new_session = session_factory(get_engine(settings.database_url))
    with new_session() as session:
        user, _tokens = accounts.register(
            session, settings, "gone@example.com", "a long passphrase!"
        )
        session.commit()
        user_id = user.id

    deleting = new_session()
    gone = deleting.get(type(user), user_id)
    # Not committed yet: the user row is locked.
    accounts.delete_account(deleting, settings, store, gone, "a long passphrase!")

    outcome: list[BaseException | None] = []

    def scan() -> None:
        with new_session() as session:
            try:
                _store_scan(session, store, user_id)
                session.commit()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    thread = threading.Thread(target=scan)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the scan must wait for the deletion in progress"
    deleting.commit()
    deleting.close()
    thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], UnauthorizedError), outcome
    assert list((settings.objects_dir).rglob("*.jpg")) == []
    assert list((settings.objects_dir).rglob("*.png")) == []


def test_a_deletion_waits_for_a_scan_being_stored_and_takes_it_along(
    settings: Settings, store: ObjectStore, session: Session
) -> None:
    new_session = session_factory(get_engine(settings.database_url))
    with new_session() as s:
        user, _tokens = accounts.register(s, settings, "late@example.com", "a long passphrase!")
        s.commit()
        user_id = user.id

    scanning = new_session()
    _store_scan(scanning, store, user_id)  # not committed: its reference to the user is held

    done: list[int] = []

    def delete() -> None:
        with new_session() as s:
            done.append(
                accounts.delete_account(
                    s, settings, store, s.get(type(user), user_id), "a long passphrase!"
                )
            )
            s.commit()

    thread = threading.Thread(target=delete)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the deletion must wait for the scan being stored"
    scanning.commit()
    scanning.close()
    thread.join(timeout=30)
    assert done and done[0] >= 1
    assert list((settings.objects_dir).rglob("*.jpg")) == []
