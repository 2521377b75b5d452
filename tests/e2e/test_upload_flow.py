"""The upload flow end to end in one process: API -> presigned POST to S3 -> event -> endpoint.

S3 is a moto server over real HTTP (the photo really is POSTed with the presigned form), the
database is PostgreSQL, and SageMaker's ``InvokeEndpoint`` is answered by the real inference
container app (real engine, random weights) through a botocore ``before-send`` hook: nothing
else is replaced. moto's mock Lambda needs Docker to run functions, so the tests build the S3
event from the stored object (its key, ETag and size) and call ``on_upload``'s handler the way
Lambda would. moto does not enforce a presigned POST's conditions (size, content type); real
S3 refuses an oversized upload itself, so the tests check the form's conditions and that an
oversized object which arrives anyway is refused by ``on_upload``.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from functions.auth import app as auth_fn
from functions.history import app as history_fn
from functions.on_upload import app as on_upload_fn
from functions.uploads import app as uploads_fn
from skinscan.commands.invoke import LambdaContext
from skinscan_common.db import Prediction, UploadEvent, get_engine, session_factory
from skinscan_common.endpoint import EndpointError
from skinscan_common.services import accounts
from tests.cloud_fixtures import (  # noqa: F401  (fixtures)
    Cloud,
    cloud_fixture,
    moto_url_fixture,
)
from tests.engine_fixtures import ham_fixture_paths
from tests.support.apigw import call_handler, http_event
from tests.support.aws import s3_event_for

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
PHOTOS = [p.read_bytes() for p in ham_fixture_paths()[:6]]


def _context(request_id: str | None = None) -> LambdaContext:
    return LambdaContext("skinscan-on-upload", aws_request_id=request_id or str(uuid.uuid4()))


def _create_upload(cloud: Cloud, token: str | None = None, **body: Any) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return call_handler(
        uploads_fn.handler, http_event("POST", "/v1/uploads", json_body=body, headers=headers)
    )


def _post_form(answer: dict[str, Any], data: bytes, content_type: str) -> httpx2.Response:
    form = answer["upload"]
    return httpx2.post(form["url"], data=form["fields"], files={"file": ("x", data, content_type)})


def _upload(cloud: Cloud, photo: bytes, token: str | None = None) -> tuple[dict, dict]:
    """POST /v1/uploads, upload the photo with the form; the answer and the S3 event."""
    status, answer = _create_upload(cloud, token, content_type="image/jpeg")
    assert status == 201, answer
    assert _post_form(answer, photo, "image/jpeg").status_code in (200, 204)
    return answer, s3_event_for(cloud.moto, cloud.bucket, answer["upload"]["key"])


def _row(cloud: Cloud, prediction_id: str) -> Prediction:
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        row = session.get(Prediction, uuid.UUID(prediction_id))
        assert row is not None
        return row


def _invocations_for(cloud: Cloud, key: str) -> int:
    return sum(1 for body in cloud.shim.bodies() if body.get("key") == key)


def _get(prediction_id: str, headers: dict[str, str]) -> tuple[int, Any]:
    event = http_event("GET", f"/v1/predictions/{prediction_id}", headers=headers)
    return call_handler(history_fn.handler, event)


def test_signed_in_upload_is_scored_with_heatmap_in_s3_and_row_in_postgres(cloud: Cloud) -> None:
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        user, tokens = accounts.register(
            session, cloud.settings, "up@example.com", "a long passphrase!"
        )
        session.commit()
    answer, event = _upload(cloud, PHOTOS[0], tokens.access_token)
    key = answer["upload"]["key"]
    assert key == f"uploads/{user.id}/{answer['id']}" and answer["guest_token"] is None
    assert answer["status"] == "pending" and _row(cloud, answer["id"]).status == "pending"

    result = on_upload_fn.handler(event, _context())
    assert result["outcomes"] == {key: "scored"}

    row = _row(cloud, answer["id"])
    assert row.status == "done" and row.verdict in ("benign", "malignant", "unknown")
    assert row.source_etag == event["Records"][0]["s3"]["object"]["eTag"]
    assert get_engine(cloud.settings.database_url).dialect.name == "postgresql"
    s3 = cloud.s3()
    heatmap = s3.get_object(Bucket=cloud.bucket, Key=row.heatmap_key)["Body"].read()
    assert heatmap.startswith(b"\x89PNG") and row.heatmap_key.startswith(f"results/{user.id}/")
    assert s3.head_object(Bucket=cloud.bucket, Key=row.overlay_key)["ContentLength"] > 0

    status, view = _get(answer["id"], {"authorization": f"Bearer {tokens.access_token}"})
    assert status == 200 and view["status"] == "done" and view["verdict"] == row.verdict
    assert httpx2.get(view["heatmap_url"]).content == heatmap
    listed = call_handler(
        history_fn.handler,
        http_event(
            "GET", "/v1/predictions", headers={"authorization": f"Bearer {tokens.access_token}"}
        ),
    )
    assert [item["id"] for item in listed[1]["items"]] == [answer["id"]]


def test_guest_polls_with_the_capability_token_only(cloud: Cloud) -> None:
    answer, event = _upload(cloud, PHOTOS[1])
    assert answer["upload"]["key"] == f"uploads/guest/{answer['id']}"
    token = answer["guest_token"]
    assert token and _row(cloud, answer["id"]).guest_token_hash != token  # stored hashed
    assert _get(answer["id"], {"x-capability-token": token})[1]["status"] == "pending"
    on_upload_fn.handler(event, _context())
    status, view = _get(answer["id"], {"x-capability-token": token})
    assert status == 200 and view["status"] == "done" and view["heatmap_url"]
    assert (
        call_handler(
            history_fn.handler, http_event("GET", f"/v1/predictions/{answer['id']}?token={token}")
        )[0]
        == 200
    )
    # The id alone, or with someone else's token, reveals nothing.
    assert _get(answer["id"], {})[0] == 401
    assert _get(answer["id"], {"x-capability-token": "not-the-token"})[0] == 404


def test_duplicate_events_score_once_also_when_concurrent(cloud: Cloud) -> None:
    answer, event = _upload(cloud, PHOTOS[2])
    key = answer["upload"]["key"]
    results: list[Any] = []

    def deliver() -> None:
        try:
            results.append(on_upload_fn.handler(event, _context())["outcomes"][key])
        except Exception as exc:  # the loser of a race is told to retry later
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deliver()  # and once more, well after
    assert results.count("scored") == 1, results
    assert set(results) <= {"scored", "duplicate", "ScoringInFlightError"}
    assert results[-1] == "duplicate"
    assert _invocations_for(cloud, key) == 1
    assert _row(cloud, answer["id"]).status == "done"


def test_endpoint_failure_marks_failed_keeps_upload_and_rescores(cloud: Cloud) -> None:
    answer, event = _upload(cloud, PHOTOS[3])
    key = answer["upload"]["key"]
    cloud.shim.before = lambda _body: 503  # the endpoint is down
    with pytest.raises(EndpointError, match="503"):
        on_upload_fn.handler(event, _context())  # raised: Lambda retries, then dead-letters
    row = _row(cloud, answer["id"])
    assert row.status == "failed" and "busy" in (row.error or "")  # words for people
    assert cloud.s3().head_object(Bucket=cloud.bucket, Key=key)["ContentLength"] > 0
    view = _get(answer["id"], {"x-capability-token": answer["guest_token"]})[1]
    assert view["status"] == "failed" and view["error"] == row.error

    cloud.shim.before = None  # back up: a re-drive of the dead-lettered event scores it
    assert on_upload_fn.handler(event, _context())["outcomes"] == {key: "scored"}
    assert _row(cloud, answer["id"]).status == "done"
    assert _invocations_for(cloud, key) == 2


def test_database_down_during_completion_then_the_retry_completes_the_row(cloud: Cloud) -> None:
    answer, event = _upload(cloud, PHOTOS[4])
    url = cloud.settings.database_url
    fired: list[str] = []

    def drop_connections(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """When the container writes the result, the server drops every connection."""
        if statement.lstrip().upper().startswith("UPDATE PREDICTIONS") and not fired:
            fired.append(statement)
            admin = create_engine(url)
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            admin.dispose()

    db = get_engine(url)
    sa_event.listen(db, "before_cursor_execute", drop_connections)
    context = _context()
    try:
        # The container answers 503 (database unavailable): a failure to retry, not the photo's.
        with pytest.raises(EndpointError, match="503"):
            on_upload_fn.handler(event, context)
    finally:
        sa_event.remove(db, "before_cursor_execute", drop_connections)
    assert fired and _row(cloud, answer["id"]).status != "done"
    # Lambda's retry of the same invocation (same request id) completes the row.
    assert on_upload_fn.handler(event, context)["outcomes"] == {answer["upload"]["key"]: "scored"}
    row = _row(cloud, answer["id"])
    assert row.status == "done" and row.heatmap_key and row.error is None


def test_non_image_is_refused_with_clear_errors(cloud: Cloud) -> None:
    status, body = _create_upload(cloud, content_type="text/html")
    assert status == 415 and "image/jpeg or image/png" in body["error"]["message"]
    # A non-image that arrives anyway (declared as a JPEG): failed with the reason, no retry.
    answer, event = _upload(cloud, b"<html><script>alert(1)</script></html>")
    assert on_upload_fn.handler(event, _context())["outcomes"] == {
        answer["upload"]["key"]: "rejected"
    }
    row = _row(cloud, answer["id"])
    assert row.status == "failed" and "not an image" in (row.error or "")
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        claim = session.scalars(select(UploadEvent)).one()
        assert claim.status == "done" and claim.prediction_id == row.id
    # A duplicate delivery of the same event does not ask the model again.
    calls = len(cloud.shim.calls)
    assert on_upload_fn.handler(event, _context())["outcomes"] == {
        answer["upload"]["key"]: "duplicate"
    }
    assert len(cloud.shim.calls) == calls


def test_oversized_upload_is_refused_with_a_clear_error(cloud: Cloud) -> None:
    status, answer = _create_upload(cloud, content_type="image/png")
    assert status == 201
    limit = answer["upload"]["max_bytes"]
    assert limit == 10 * 1024 * 1024
    policy = json.loads(base64.b64decode(answer["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1, limit] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    # moto does not enforce the policy (S3 answers 400 EntityTooLarge): on_upload refuses it.
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * limit
    assert _post_form(answer, big, "image/png").status_code in (200, 204)
    event = s3_event_for(cloud.moto, cloud.bucket, answer["upload"]["key"])
    assert on_upload_fn.handler(event, _context())["outcomes"] == {
        answer["upload"]["key"]: "rejected"
    }
    row = _row(cloud, answer["id"])
    assert row.status == "failed" and f"the limit is {limit} bytes" in (row.error or "")
    assert cloud.shim.calls == []  # the endpoint never saw it


def test_events_that_are_not_uploads_are_ignored(cloud: Cloud) -> None:
    cloud.s3().put_object(Bucket=cloud.bucket, Key="uploads/guest/not-a-uuid", Body=b"x")
    event = s3_event_for(cloud.moto, cloud.bucket, "uploads/guest/not-a-uuid")
    assert on_upload_fn.handler(event, _context())["outcomes"] == {
        "uploads/guest/not-a-uuid": "ignored"
    }
    with pytest.raises(ValueError, match="no Records"):
        on_upload_fn.handler({"hello": "world"}, _context())
    with Session(get_engine(cloud.settings.database_url)) as session:
        assert session.scalars(select(UploadEvent)).all() == []


def test_the_form_used_again_scores_the_photo_that_is_kept(cloud: Cloud) -> None:
    """A presigned form stays valid for minutes: a second photo sent with it replaces the first
    in the bucket, so the prediction is scored again rather than keep the first photo's answer."""
    answer, first = _upload(cloud, PHOTOS[0])
    key = answer["upload"]["key"]
    assert on_upload_fn.handler(first, _context())["outcomes"] == {key: "scored"}
    before = _row(cloud, answer["id"])
    heatmap_before = cloud.s3().get_object(Bucket=cloud.bucket, Key=before.heatmap_key)

    assert _post_form(answer, PHOTOS[5], "image/jpeg").status_code in (200, 204)
    second = s3_event_for(cloud.moto, cloud.bucket, key)
    assert second["Records"][0]["s3"]["object"]["eTag"] != before.source_etag
    assert on_upload_fn.handler(second, _context())["outcomes"] == {key: "scored"}
    after = _row(cloud, answer["id"])
    assert after.status == "done"
    assert after.source_etag == second["Records"][0]["s3"]["object"]["eTag"]
    assert after.p_malignant != before.p_malignant  # the second photo's own answer
    heatmap_after = cloud.s3().get_object(Bucket=cloud.bucket, Key=after.heatmap_key)
    assert heatmap_after["Body"].read() != heatmap_before["Body"].read()
    assert _invocations_for(cloud, key) == 2

    # Late or repeated deliveries of either event change nothing and call no model.
    assert on_upload_fn.handler(second, _context())["outcomes"] == {key: "duplicate"}
    assert on_upload_fn.handler(first, _context())["outcomes"] == {key: "duplicate"}
    assert _invocations_for(cloud, key) == 2
    assert _row(cloud, answer["id"]).p_malignant == after.p_malignant


def test_an_event_for_replaced_bytes_is_closed_unscored_however_late(cloud: Cloud) -> None:
    """Two photos sent with one form before either event arrives: S3 delivers both events in any
    order, each naming its own ETag. Only the photo kept is scored, once."""
    answer, first = _upload(cloud, PHOTOS[0])
    key = answer["upload"]["key"]
    assert _post_form(answer, PHOTOS[5], "image/jpeg").status_code in (200, 204)
    second = s3_event_for(cloud.moto, cloud.bucket, key)
    second_etag = second["Records"][0]["s3"]["object"]["eTag"]
    assert first["Records"][0]["s3"]["object"]["eTag"] != second_etag

    # The older event first: the object no longer holds its bytes, so nothing is scored.
    assert on_upload_fn.handler(first, _context())["outcomes"] == {key: "superseded"}
    assert _row(cloud, answer["id"]).status == "pending"
    assert _invocations_for(cloud, key) == 0
    assert on_upload_fn.handler(second, _context())["outcomes"] == {key: "scored"}
    scored = _row(cloud, answer["id"])
    assert scored.status == "done" and scored.source_etag == second_etag
    assert _invocations_for(cloud, key) == 1

    # The other order, on another form: the newer event is scored first and the older one comes
    # late. It must not rescore the kept photo or give the row its own ETag.
    answer, first = _upload(cloud, PHOTOS[1])
    key = answer["upload"]["key"]
    assert _post_form(answer, PHOTOS[2], "image/jpeg").status_code in (200, 204)
    second = s3_event_for(cloud.moto, cloud.bucket, key)
    assert on_upload_fn.handler(second, _context())["outcomes"] == {key: "scored"}
    scored = _row(cloud, answer["id"])
    assert on_upload_fn.handler(first, _context())["outcomes"] == {key: "superseded"}
    late = _row(cloud, answer["id"])
    assert late.source_etag == second["Records"][0]["s3"]["object"]["eTag"]
    assert (late.status, late.p_malignant) == ("done", scored.p_malignant)
    assert _invocations_for(cloud, key) == 1


def test_a_photo_replaced_while_the_first_was_being_scored_is_scored_too(cloud: Cloud) -> None:
    """The endpoint completed the row for photo A, but A's invocation has not closed its event
    yet, when photo B (the same form) is delivered: B must be scored, not taken as done."""
    answer, first = _upload(cloud, PHOTOS[0])
    key, prediction_id = answer["upload"]["key"], answer["id"]
    # The endpoint scores A (what A's on_upload invocation asked for), and that invocation is
    # then held up before its own last write.
    body = {"bucket": cloud.bucket, "key": key, "prediction_id": prediction_id}
    assert cloud.shim.container.post("/invocations", json=body).status_code == 200
    scored_a = _row(cloud, prediction_id)
    assert scored_a.status == "done"

    assert _post_form(answer, PHOTOS[5], "image/jpeg").status_code in (200, 204)
    second = s3_event_for(cloud.moto, cloud.bucket, key)
    assert on_upload_fn.handler(second, _context())["outcomes"] == {key: "scored"}
    scored_b = _row(cloud, prediction_id)
    assert scored_b.source_etag == second["Records"][0]["s3"]["object"]["eTag"]
    assert scored_b.p_malignant != scored_a.p_malignant
    # A's event, delivered late: its bytes are gone, nothing changes.
    assert on_upload_fn.handler(first, _context())["outcomes"] == {key: "superseded"}
    assert _row(cloud, prediction_id).source_etag == scored_b.source_etag


def test_an_upload_after_its_account_was_deleted_is_not_kept(cloud: Cloud) -> None:
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        _user, tokens = accounts.register(
            session, cloud.settings, "gone@example.com", "a long passphrase!"
        )
        session.commit()
    status, answer = _create_upload(cloud, tokens.access_token, content_type="image/jpeg")
    assert status == 201
    deleted = call_handler(
        auth_fn.handler,
        http_event(
            "DELETE",
            "/v1/auth/me",
            headers={"authorization": f"Bearer {tokens.access_token}"},
            json_body={"password": "a long passphrase!"},
        ),
    )
    assert deleted[0] == 204
    # The form outlives the account: the photo still arrives, and is deleted, not kept.
    key = answer["upload"]["key"]
    assert _post_form(answer, PHOTOS[1], "image/jpeg").status_code in (200, 204)
    event = s3_event_for(cloud.moto, cloud.bucket, key)
    assert on_upload_fn.handler(event, _context())["outcomes"] == {key: "discarded"}
    listed = cloud.s3().list_objects_v2(Bucket=cloud.bucket, Prefix="uploads/")
    assert [o["Key"] for o in listed.get("Contents", [])] == []
    assert cloud.shim.calls == []


def test_a_kept_photo_whose_row_is_not_there_yet_is_not_deleted(cloud: Cloud) -> None:
    """``POST /v1/predict`` stores the photo, then commits its row: the S3 event can come first,
    and that photo (its key has an extension) must survive it."""
    key = f"uploads/{uuid.uuid4()}/{uuid.uuid4()}.jpg"
    cloud.s3().put_object(Bucket=cloud.bucket, Key=key, Body=PHOTOS[2])
    event = s3_event_for(cloud.moto, cloud.bucket, key)
    assert on_upload_fn.handler(event, _context())["outcomes"] == {key: "ignored"}
    assert cloud.s3().head_object(Bucket=cloud.bucket, Key=key)["ContentLength"] > 0
