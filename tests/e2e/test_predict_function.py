"""``POST /v1/predict`` as deployed: the predict Lambda -> SageMaker -> the real container.

The container's refusals reach the person as the container gave them (the same codes the local
stack answers), and an endpoint that is busy or failing is told apart from a bad photo.
SageMaker's ``InvokeEndpoint`` is answered by the container app through the botocore hook of
tests.support.aws (its errors come back as SageMaker's ``ModelError``, as in AWS).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from functions.on_upload import app as on_upload_fn
from functions.predict import app as predict_fn
from skinscan.commands.invoke import LambdaContext
from skinscan_common.db import Prediction, get_engine, session_factory
from skinscan_common.services import accounts
from tests import image_samples as samples
from tests.cloud_fixtures import (  # noqa: F401  (fixtures)
    Cloud,
    cloud_fixture,
    moto_url_fixture,
)
from tests.engine_fixtures import ham_fixture_paths
from tests.support.apigw import http_event
from tests.support.aws import s3_event_for

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _predict(
    photo: bytes, content_type: str = "image/jpeg", token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    event = http_event(
        "POST",
        "/v1/predict",
        body=body,
        headers={
            "content-type": f"multipart/form-data; boundary={boundary}",
            **({"authorization": f"Bearer {token}"} if token else {}),
        },
    )
    response = predict_fn.handler(event, None)
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return response["statusCode"], response.get("headers") or {}, json.loads(raw)


def test_a_photo_is_scored_through_the_endpoint(cloud: Cloud) -> None:
    status, _headers, answer = _predict(ham_fixture_paths()[0].read_bytes())
    assert status == 200, answer
    assert answer["verdict"] in ("benign", "malignant", "unknown")
    assert answer["stored"] is False  # a guest: nothing kept


@pytest.mark.parametrize(
    ("photo", "content_type", "status", "code", "words"),
    [
        (samples.truncated_jpeg(), "image/jpeg", 422, "corrupt", "truncated or corrupt"),
        (samples.huge_png_header(), "image/png", 413, "too_many_pixels", "pixels"),
    ],
)
def test_the_container_refusal_reaches_the_person_as_it_was_given(
    cloud: Cloud, photo: bytes, content_type: str, status: int, code: str, words: str
) -> None:
    got, _headers, answer = _predict(photo, content_type)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert words in answer["error"]["message"]
    assert "model endpoint failed" not in answer["error"]["message"]  # log text, not for people
    assert len(cloud.shim.served) == 1  # the container itself refused it


@pytest.mark.parametrize(
    ("endpoint_status", "status", "code"),
    [(503, 503, "model_busy"), (429, 503, "model_busy"), (500, 502, "model_unavailable")],
)
def test_an_endpoint_in_trouble_is_not_blamed_on_the_photo(
    cloud: Cloud, endpoint_status: int, status: int, code: str
) -> None:
    cloud.shim.before = lambda _body: endpoint_status
    got, headers, answer = _predict(ham_fixture_paths()[1].read_bytes())
    assert (got, answer["error"]["code"]) == (status, code), answer
    if status == 503:
        assert headers.get("retry-after") == "5"
    assert "model endpoint failed" not in answer["error"]["message"]


def test_a_stored_photo_s_upload_event_calls_no_model(cloud: Cloud) -> None:
    """A signed-in person's photo is scored, then stored under uploads/ (where S3 notifies
    on_upload): that event must not score it again."""
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        _user, tokens = accounts.register(
            session, cloud.settings, "kept@example.com", "a long passphrase!"
        )
        session.commit()
    status, _headers, answer = _predict(
        ham_fixture_paths()[2].read_bytes(), token=tokens.access_token
    )
    assert status == 200 and answer["stored"] is True, answer
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        row = session.get(Prediction, uuid.UUID(answer["id"]))
        assert row is not None
        key = row.image_key
    assert len(cloud.shim.calls) == 1
    event = s3_event_for(cloud.moto, cloud.bucket, key)
    assert on_upload_fn.handler(event, LambdaContext("on-upload"))["outcomes"] == {key: "duplicate"}
    assert len(cloud.shim.calls) == 1  # no second model call
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        row = session.get(Prediction, uuid.UUID(answer["id"]))
        assert row is not None and row.status == "done"
        assert row.source_etag == event["Records"][0]["s3"]["object"]["eTag"]
