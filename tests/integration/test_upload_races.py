"""Uploads scored while something else happens to their prediction (both databases, local objects).

``on_upload``'s work (``services.upload_events.handle_upload``) runs against an endpoint that
scores the stored photo the way the container and the in-process client do
(``services.scoring.score_stored_object``), with a stand-in model: its answer follows from the
photo's bytes, and a hook runs while it "thinks", so each race happens at one known point.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, event
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import Prediction, get_engine, session_scope
from skinscan_common.errors import AppError
from skinscan_common.s3events import S3Object, etag_of
from skinscan_common.services.scoring import score_stored_object, sniff_image_type
from skinscan_common.services.upload_events import UploadContext, handle_upload
from skinscan_common.storage import ObjectStore, heatmap_key, overlay_key
from tests.integration.conftest import result

PHOTO_A = b"\xff\xd8\xff" + b"photo A" * 64
PHOTO_B = b"\xff\xd8\xff" + b"photo B, another lesion" * 64
NOT_AN_IMAGE = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
PNG = b"\x89PNG\r\n\x1a\n a heatmap"


class StandInEndpoint:
    """The endpoint's stored-object path with a model whose answer follows from the bytes.

    ``during`` (if set) runs once, while the model works: between reading the row and photo
    and writing the heatmaps and the answer.
    """

    def __init__(self, db: Engine, store: ObjectStore) -> None:
        self.db = db
        self.store = store
        self.calls = 0
        self.during: Callable[[], None] | None = None

    @staticmethod
    def p_malignant(image: bytes) -> float:
        return hashlib.sha256(image).digest()[0] / 255

    def predict_image(self, image: bytes, content_type: str) -> dict[str, Any]:
        self.calls += 1
        hook, self.during = self.during, None
        if hook is not None:
            hook()
        if sniff_image_type(image) is None:
            raise AppError(
                "The file is not an image we can read.", code="not_an_image", status_code=422
            )
        p = self.p_malignant(image)
        answer = result("malignant" if p >= 0.5 else "benign", p)
        return {**answer, "heatmap_png": PNG, "overlay_png": PNG}

    def score_object(self, bucket: str, key: str, prediction_id: str) -> dict[str, Any]:
        assert bucket == self.store.bucket
        with session_scope(self.db) as session:
            outcome = score_stored_object(
                session, self.store, key=key, prediction_id=prediction_id, score=self.predict_image
            )
        if outcome.error is not None:  # committed as failed; the caller learns why
            raise outcome.error
        assert outcome.answer is not None
        return outcome.answer

    def score_objects(self, bucket: str, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        raise NotImplementedError("no batch jobs here")


@pytest.fixture
def endpoint(settings: Settings, store: ObjectStore) -> StandInEndpoint:
    return StandInEndpoint(get_engine(settings.database_url), store)


@pytest.fixture
def ctx(settings: Settings, store: ObjectStore, endpoint: StandInEndpoint) -> UploadContext:
    return UploadContext(
        db=get_engine(settings.database_url),
        endpoint=endpoint,  # type: ignore[arg-type]  # the protocol's stored-object path
        store=store,
        max_bytes=settings.max_upload_bytes,
        claim_s=settings.upload_claim_s,
        invocation_id="on-upload-1",
    )


def _form(client: TestClient, headers: dict[str, str] | None = None) -> tuple[uuid.UUID, str]:
    """``POST /v1/uploads``: the pending prediction's id and the key its form writes."""
    answer = client.post("/v1/uploads", json={"content_type": "image/jpeg"}, headers=headers)
    assert answer.status_code == 201, answer.text
    return uuid.UUID(answer.json()["id"]), answer.json()["upload"]["key"]


def _send(store: ObjectStore, key: str, photo: bytes) -> S3Object:
    """The photo arriving with the form (it replaces what the key held), and its S3 event."""
    store.put(key, photo, "image/jpeg")
    return S3Object(store.bucket, key, etag_of(photo), len(photo))


def _row(session: Session, prediction_id: uuid.UUID) -> Prediction | None:
    session.expire_all()
    return session.get(Prediction, prediction_id)


def _left_behind(
    store: ObjectStore, prediction_id: uuid.UUID, owner: uuid.UUID | None
) -> list[str]:
    keys = [heatmap_key(prediction_id, owner), overlay_key(prediction_id, owner)]
    return [key for key in keys if store.exists(key)]


def test_a_prediction_deleted_while_its_photo_is_scored_leaves_no_heatmaps(
    client: TestClient,
    register: Any,
    store: ObjectStore,
    endpoint: StandInEndpoint,
    ctx: UploadContext,
    session: Session,
) -> None:
    """The owner deletes the prediction after the endpoint read it and before the answer is
    stored: the heatmaps the endpoint then writes must not outlive it."""
    ada = register()
    owner = uuid.UUID(ada["user"]["id"])
    prediction_id, key = _form(client, ada["headers"])
    obj = _send(store, key, PHOTO_A)

    def owner_deletes_it() -> None:
        deleted = client.delete(f"/v1/predictions/{prediction_id}", headers=ada["headers"])
        assert deleted.status_code == 204

    endpoint.during = owner_deletes_it
    assert handle_upload(obj, ctx) == "discarded"
    assert endpoint.calls == 1 and endpoint.during is None  # the hook ran, mid-scoring
    assert _left_behind(store, prediction_id, owner) == []
    assert not store.exists(key)
    assert _row(session, prediction_id) is None


def test_deleting_a_prediction_deletes_heatmaps_it_does_not_name_yet(
    client: TestClient, register: Any, store: ObjectStore, session: Session
) -> None:
    """A scorer writes the heatmaps before it records them on the row: a deletion in between
    finds a row naming none, and must still delete them."""
    ada = register()
    owner = uuid.UUID(ada["user"]["id"])
    prediction_id, key = _form(client, ada["headers"])
    _send(store, key, PHOTO_A)
    for png_key in (heatmap_key(prediction_id, owner), overlay_key(prediction_id, owner)):
        store.put(png_key, PNG, "image/png")
    row = _row(session, prediction_id)
    assert row is not None and row.status == "pending" and row.heatmap_key is None

    deleted = client.delete(f"/v1/predictions/{prediction_id}", headers=ada["headers"])
    assert deleted.status_code == 204
    assert _left_behind(store, prediction_id, owner) == []
    assert not store.exists(key)


class HeldScorer:
    """An upload being scored in a thread, held inside the model until ``release()``; the
    deletions below release it right after they deleted a results folder."""

    def __init__(self, endpoint: StandInEndpoint, store: ObjectStore, key: str, pid: uuid.UUID):
        self.raised: list[BaseException] = []
        in_model, self._released = threading.Event(), threading.Event()

        def model_waits() -> None:
            in_model.set()
            self._released.wait(timeout=5)

        def score() -> None:
            try:
                endpoint.score_object(store.bucket, key, str(pid))
            except BaseException as exc:  # the row is gone: looked at by the tests
                self.raised.append(exc)

        endpoint.during = model_waits
        self.thread = threading.Thread(target=score)
        self.thread.start()
        assert in_model.wait(timeout=30)

    def release_after(self, delete_prefix: Any) -> Any:
        """``delete_prefix`` that lets the scorer store its answer once a results folder is
        deleted, and gives it long enough to do so when nothing holds its row; a deletion that
        holds it (it deleted the row first) makes the scorer wait for its commit instead."""

        def deleted_then_released(prefix: str) -> int:
            count = delete_prefix(prefix)
            if prefix.startswith("results/"):
                self._released.set()
                self.thread.join(timeout=1.0)
            return count

        return deleted_then_released

    def finished(self) -> bool:
        self.thread.join(timeout=30)
        return not self.thread.is_alive()


def _held_upload(
    client: TestClient,
    headers: dict[str, str],
    store: ObjectStore,
    endpoint: StandInEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[uuid.UUID, HeldScorer]:
    """A photo uploaded and being scored, held in the model until a deletion has deleted a
    results folder."""
    prediction_id, key = _form(client, headers)
    _send(store, key, PHOTO_A)
    scorer = HeldScorer(endpoint, store, key, prediction_id)
    monkeypatch.setattr(store, "delete_prefix", scorer.release_after(store.delete_prefix))
    return prediction_id, scorer


def test_a_scorer_completing_the_row_during_its_deletion_leaves_no_heatmaps(
    client: TestClient,
    register: Any,
    store: ObjectStore,
    endpoint: StandInEndpoint,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The endpoint read the row and the photo before a deletion began, and stores its answer
    once the deletion has deleted the prediction's objects: the PNGs it then writes must not
    survive, whichever of the two writes the row first."""
    ada = register()
    owner = uuid.UUID(ada["user"]["id"])
    prediction_id, scorer = _held_upload(client, ada["headers"], store, endpoint, monkeypatch)
    deleted = client.delete(f"/v1/predictions/{prediction_id}", headers=ada["headers"])
    assert deleted.status_code == 204
    assert scorer.finished() and endpoint.calls == 1
    assert _row(session, prediction_id) is None
    assert _left_behind(store, prediction_id, owner) == []
    assert scorer.raised  # it found the row gone


def test_a_scan_scored_while_its_account_is_deleted_leaves_no_heatmaps(
    client: TestClient,
    register: Any,
    store: ObjectStore,
    endpoint: StandInEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As above, for a whole account: the deletion's objects go after its rows, so a scorer that
    stores its answer after the account's folders were emptied finds its row gone and cleans up."""
    ada = register()
    owner = uuid.UUID(ada["user"]["id"])
    prediction_id, scorer = _held_upload(client, ada["headers"], store, endpoint, monkeypatch)
    gone = client.request(
        "DELETE", "/v1/auth/me", json={"password": ada["password"]}, headers=ada["headers"]
    )
    assert gone.status_code == 204
    assert scorer.finished() and endpoint.calls == 1
    assert _left_behind(store, prediction_id, owner) == []
    assert scorer.raised  # it found the row gone


def test_the_form_used_again_with_an_earlier_photo_scores_it_again(
    client: TestClient,
    store: ObjectStore,
    endpoint: StandInEndpoint,
    ctx: UploadContext,
    session: Session,
) -> None:
    """Photo A, then B, then A again with one form: the third event has the first one's ETag,
    whose event is done, yet the prediction holds B's answer while the bucket holds A."""
    prediction_id, key = _form(client)
    first = _send(store, key, PHOTO_A)
    assert handle_upload(first, ctx) == "scored"
    assert handle_upload(_send(store, key, PHOTO_B), ctx) == "scored"
    row = _row(session, prediction_id)
    assert row is not None and row.p_malignant == endpoint.p_malignant(PHOTO_B)

    again = _send(store, key, PHOTO_A)
    assert again == first  # the same (bucket, key, ETag): S3 cannot tell them apart
    assert handle_upload(again, ctx) == "scored"
    row = _row(session, prediction_id)
    assert row is not None and row.status == "done"
    assert row.source_etag == first.etag
    assert row.p_malignant == endpoint.p_malignant(PHOTO_A)
    assert endpoint.calls == 3

    # A genuine duplicate delivery, of either event, is still a no-op.
    assert handle_upload(again, ctx) == "duplicate"
    late_b = S3Object(store.bucket, key, etag_of(PHOTO_B), len(PHOTO_B))
    assert handle_upload(late_b, ctx) == "duplicate"
    assert endpoint.calls == 3
    assert _row(session, prediction_id).source_etag == first.etag  # type: ignore[union-attr]


def test_a_photo_sent_again_after_a_refused_upload_is_scored_again(
    client: TestClient,
    store: ObjectStore,
    endpoint: StandInEndpoint,
    ctx: UploadContext,
    session: Session,
) -> None:
    """A is scored, then a non-image sent with the same form is refused (the prediction is
    failed), then A is sent again: A's answer is what the prediction must hold."""
    prediction_id, key = _form(client)
    first = _send(store, key, PHOTO_A)
    assert handle_upload(first, ctx) == "scored"
    refused = _send(store, key, NOT_AN_IMAGE)
    assert handle_upload(refused, ctx) == "rejected"
    assert handle_upload(refused, ctx) == "duplicate"  # the refusal stands: no model call
    assert endpoint.calls == 2
    row = _row(session, prediction_id)
    assert row is not None and row.status == "failed"

    assert handle_upload(_send(store, key, PHOTO_A), ctx) == "scored"
    row = _row(session, prediction_id)
    assert row is not None and row.status == "done" and row.error is None
    assert row.p_malignant == endpoint.p_malignant(PHOTO_A)
    assert endpoint.calls == 3


def test_a_prediction_deleted_just_before_its_event_is_claimed_loses_its_photo(
    client: TestClient,
    register: Any,
    settings: Settings,
    store: ObjectStore,
    endpoint: StandInEndpoint,
    ctx: UploadContext,
) -> None:
    """Deleting the account deletes the user's objects, then the rows: a photo the form sends
    in between is seen with its prediction, which is gone by the time its event is claimed
    (the claim's reference to it fails: on PostgreSQL, pg8000 reports a ProgrammingError)."""
    ada = register()
    owner = uuid.UUID(ada["user"]["id"])
    prediction_id, key = _form(client, ada["headers"])
    obj = _send(store, key, PHOTO_A)
    db = get_engine(settings.database_url)
    fired: list[str] = []

    def delete_the_row_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if fired or not statement.lstrip().upper().startswith("INSERT INTO UPLOAD_EVENTS"):
            return
        fired.append(statement)
        with session_scope(db) as other:  # another connection, committed before the insert
            other.execute(delete(Prediction).where(Prediction.id == prediction_id))

    event.listen(db, "before_cursor_execute", delete_the_row_first)
    try:
        outcome = handle_upload(obj, ctx)
    finally:
        event.remove(db, "before_cursor_execute", delete_the_row_first)
    assert fired
    assert outcome == "discarded"
    assert not store.exists(key)
    assert _left_behind(store, prediction_id, owner) == []
    assert endpoint.calls == 0
