"""Housekeeping on a real database (both backends): what it removes, finishes and leaves alone."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import BatchItem, BatchJob, get_engine, session_scope
from skinscan_common.db.models import LoginAttempt, Prediction, RefreshToken, utcnow
from skinscan_common.services import batch, housekeeping
from skinscan_common.storage import ObjectNotFoundError, ObjectStore
from tests.support.batch_answers import done_answer

LAYOUT = batch.JobLayout.for_bucket("job")


def _ago(seconds: float) -> Any:
    return utcnow() - timedelta(seconds=seconds)


# -- sessions and login counts ------------------------------------------------------------------


def test_ended_sessions_go_live_ones_stay_whole(
    client: TestClient, register: Any, settings: Settings, session: Session
) -> None:
    reg = register()
    user_id = uuid.UUID(reg["user"]["id"])
    # A live session that was refreshed: its rotated token stays (it detects a replay).
    rotated = client.post(
        "/v1/auth/refresh", json={"refresh_token": reg["tokens"]["refresh_token"]}
    ).json()
    live = session.scalar(select(RefreshToken.family_id).where(RefreshToken.user_id == user_id))
    ended, recent = uuid.uuid4(), uuid.uuid4()
    # A session lives longer than one refresh token (90 against 30 days): the live one may hold
    # tokens that expired long ago, and they must stay with it (its first one dates it).
    tokens = ((ended, 2 * 86400), (ended, 3 * 86400), (recent, 3600), (live, 40 * 86400))
    for family, expired_s in tokens:
        session.add(
            RefreshToken(
                user_id=user_id,
                family_id=family,
                token_hash=uuid.uuid4().hex,
                expires_at=_ago(expired_s),
            )
        )
    session.commit()

    assert housekeeping.purge_ended_sessions(get_engine(settings.database_url)) == 1
    families = set(session.scalars(select(RefreshToken.family_id)))
    assert ended not in families and recent in families
    assert len(session.scalars(select(RefreshToken)).all()) == 4  # 3 of the live one, 1 recent
    # The live session still works, and still recognises its replayed old token.
    headers = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert client.get("/v1/auth/me", headers=headers).status_code == 200
    replay = client.post("/v1/auth/refresh", json={"refresh_token": reg["tokens"]["refresh_token"]})
    assert replay.status_code == 401
    assert client.get("/v1/auth/me", headers=headers).status_code == 401  # the family ended


def test_spent_login_counts_go_running_lockouts_stay(settings: Settings, session: Session) -> None:
    window = max(settings.login_window_s, settings.register_window_s)  # one table for both
    rows = {
        "spent": LoginAttempt(key_hash="a" * 64, failures=2, window_started_at=_ago(window + 5)),
        "locked": LoginAttempt(
            key_hash="b" * 64,
            failures=3,
            window_started_at=_ago(window + 5),
            locked_until=utcnow() + timedelta(seconds=60),
        ),
        "counting": LoginAttempt(key_hash="c" * 64, failures=1, window_started_at=_ago(10)),
    }
    session.add_all(rows.values())
    session.commit()
    db = get_engine(settings.database_url)
    assert housekeeping.purge_login_attempts(db, settings) == 1
    assert set(session.scalars(select(LoginAttempt.key_hash))) == {"b" * 64, "c" * 64}


# -- uploads that never came --------------------------------------------------------------------


def _upload(client: TestClient, headers: dict[str, str] | None = None) -> str:
    answer = client.post("/v1/uploads", json={"content_type": "image/jpeg"}, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _age(session: Session, prediction_id: str, seconds: float) -> None:
    session.execute(
        update(Prediction)
        .where(Prediction.id == uuid.UUID(prediction_id))
        .values(created_at=_ago(seconds))
    )
    session.commit()


def test_uploads_that_never_came_are_deleted(
    client: TestClient, register: Any, settings: Settings, session: Session, store: ObjectStore
) -> None:
    headers = register()["headers"]
    long_gone = settings.url_ttl_s + housekeeping.UPLOAD_GRACE_S + 60
    abandoned, arrived, fresh = (_upload(client, headers) for _ in range(3))
    _age(session, abandoned, long_gone)
    _age(session, arrived, long_gone)  # its photo is there, its event is late: kept
    arrived_key = session.get(Prediction, uuid.UUID(arrived)).image_key
    store.put(arrived_key, b"\xff\xd8 a photo", "image/jpeg")

    db = get_engine(settings.database_url)
    assert housekeeping.delete_abandoned_uploads(db, store, settings) == 1
    session.expire_all()
    left = set(map(str, session.scalars(select(Prediction.id))))
    assert left == {arrived, fresh}
    assert client.get(f"/v1/predictions/{abandoned}", headers=headers).status_code == 404
    assert housekeeping.delete_abandoned_uploads(db, store, settings) == 0  # idempotent


def test_a_backlog_of_abandoned_uploads_goes_page_by_page(
    client: TestClient,
    register: Any,
    settings: Settings,
    session: Session,
    store: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = register()["headers"]
    long_gone = settings.url_ttl_s + housekeeping.UPLOAD_GRACE_S + 60
    ids = [_upload(client, headers) for _ in range(6)]
    for n, prediction_id in enumerate(ids):
        _age(session, prediction_id, long_gone + n)
    kept = ids[2]  # its photo came: kept, and not read again on every page
    store.put(session.get(Prediction, uuid.UUID(kept)).image_key, b"\xff\xd8 a photo", "image/jpeg")
    monkeypatch.setattr(housekeeping, "UPLOAD_PAGE", 2)
    commits = []
    real_scope = housekeeping.session_scope

    def counted_scope(db: Any) -> Any:
        commits.append(1)
        return real_scope(db)

    monkeypatch.setattr(housekeeping, "session_scope", counted_scope)
    db = get_engine(settings.database_url)
    assert housekeeping.delete_abandoned_uploads(db, store, settings) == 5
    assert len(commits) == 4  # pages of 2, 2, 2 and an empty one
    session.expire_all()
    assert set(map(str, session.scalars(select(Prediction.id)))) == {kept}


def test_the_local_stack_does_its_housekeeping_at_start_up(
    client: TestClient, register: Any, settings: Settings, session: Session
) -> None:
    from skinscan.local_stack import create_app

    headers = register()["headers"]
    abandoned = _upload(client, headers)
    _age(session, abandoned, settings.url_ttl_s + housekeeping.UPLOAD_GRACE_S + 60)
    quiet = settings.model_copy(update={"housekeeping_interval_s": 0})
    with TestClient(create_app(quiet, apply_migrations=False, housekeeping=True)) as stack:
        for _ in range(100):  # the first round runs in a thread as the app starts
            if stack.get(f"/v1/predictions/{abandoned}", headers=headers).status_code == 404:
                break
            time.sleep(0.05)
        assert stack.get(f"/v1/predictions/{abandoned}", headers=headers).status_code == 404


# -- batch jobs given up ------------------------------------------------------------------------


class DictBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise ObjectNotFoundError(key)
        return self.objects[key]

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        self.objects[key] = data


def _fine(items: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [done_answer(item["key"]) for item in items]


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _start_half_scored(settings: Settings, out: DictBlobs) -> list[batch.ChunkMessage]:
    """Job ``job``: chunk 0 scored, chunk 1 never finished (its worker died on its last try)."""
    db = get_engine(settings.database_url)
    keys = ["images/a.jpg", "images/b.jpg", "images/c.jpg"]
    with session_scope(db) as session:
        chunks = batch.start_job(session, "job", "batch/job/manifest.csv", keys, 2)
    batch.run_chunk(
        db, chunks[0], score=_fine, out=out, layout=LAYOUT, invoke_size=2, last_try=False
    )
    with session_scope(db) as session:  # the dead worker's lease on chunk 1, long expired
        session.execute(
            update(BatchItem)
            .where(BatchItem.chunk == 1)
            .values(owner="dead-worker", leased_until=_ago(3600))
        )
    return chunks


def _quiet_for(settings: Settings, seconds: float) -> None:
    with session_scope(get_engine(settings.database_url)) as session:
        session.execute(update(BatchItem).values(updated_at=_ago(seconds)))
        session.execute(update(BatchJob).values(updated_at=_ago(seconds)))


def test_a_job_given_up_is_finished_and_a_late_delivery_still_scores(
    settings: Settings, session: Session
) -> None:
    out = DictBlobs()
    chunks = _start_half_scored(settings, out)
    db = get_engine(settings.database_url)
    _quiet_for(settings, settings.batch_stall_s - 600)
    assert housekeeping.finish_stalled_jobs(db, out, settings) == 0  # not quiet long enough
    _quiet_for(settings, settings.batch_stall_s + 60)
    assert housekeeping.finish_stalled_jobs(db, out, settings) == 1

    job = session.get(BatchJob, "job")
    assert (job.status, job.done, job.failed, job.results_key) == ("done", 2, 1, LAYOUT.results_key)
    rows = _rows(out.objects[LAYOUT.results_key])
    assert [(r["image"], r["verdict"]) for r in rows] == [
        ("images/a.jpg", "benign"),
        ("images/b.jpg", "benign"),
        ("images/c.jpg", "error"),
    ]
    assert rows[2]["error"] == housekeeping.STALLED_ERROR
    assert housekeeping.finish_stalled_jobs(db, out, settings) == 0  # done is done

    # The chunk comes back after all (a redrive from the dead-letter queue): scored, finished.
    report = batch.run_chunk(
        db, chunks[1], score=_fine, out=out, layout=LAYOUT, invoke_size=2, last_try=False
    )
    assert (report.scored, report.finished_job) == (1, True)
    assert [r["verdict"] for r in _rows(out.objects[LAYOUT.results_key])] == ["benign"] * 3


def test_a_job_whose_images_are_held_is_left_alone(settings: Settings, session: Session) -> None:
    out = DictBlobs()
    _start_half_scored(settings, out)
    _quiet_for(settings, settings.batch_stall_s + 60)
    with session_scope(get_engine(settings.database_url)) as s:  # a worker is on it right now
        s.execute(
            update(BatchItem)
            .where(BatchItem.chunk == 1)
            .values(leased_until=utcnow() + timedelta(seconds=600))
        )
    db = get_engine(settings.database_url)
    assert housekeeping.finish_stalled_jobs(db, out, settings) == 0
    assert session.get(BatchJob, "job").status == "running"
    assert LAYOUT.results_key not in out.objects


# -- the whole run ------------------------------------------------------------------------------


def test_a_failing_step_fails_the_run_after_the_others_ran(
    settings: Settings, session: Session, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.add(LoginAttempt(key_hash="a" * 64, failures=2, window_started_at=_ago(10**5)))
    session.commit()

    def broken(*_args: Any) -> int:
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(housekeeping, "delete_abandoned_uploads", broken)
    with pytest.raises(housekeeping.HousekeepingError, match="abandoned_uploads_deleted"):
        housekeeping.run(get_engine(settings.database_url), store, settings)
    session.expire_all()
    assert session.scalars(select(LoginAttempt)).all() == []


def test_the_lambda_handler_reports_what_it_did(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.housekeeping import app as housekeeping_fn
    from skinscan_common.config import get_settings

    monkeypatch.setenv("SKINSCAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SKINSCAN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    session.add(LoginAttempt(key_hash="a" * 64, failures=2, window_started_at=_ago(10**5)))
    session.commit()

    class Context:
        function_name = "housekeeping"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:housekeeping"
        aws_request_id = "req-1"

    report = housekeeping_fn.handler({"source": "aws.scheduler"}, Context())
    assert report == {
        "sessions_purged": 0,
        "login_attempts_purged": 1,
        "abandoned_uploads_deleted": 0,
        "stalled_jobs_finished": 0,
    }
