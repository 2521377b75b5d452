"""AWS for the tests: moto over real HTTP, and the SageMaker runtime answered by the real container.

Only the network call of ``sagemaker-runtime`` ``InvokeEndpoint`` is replaced (a botocore
``before-send`` hook): the request boto3 signed is handed to the inference container's own app
(``skinscan_engine.server``, in process, with the real engine) and its answer goes back to
boto3 as SageMaker would send it (200 with the body, or ``ModelError`` 424 carrying the
container's status and body).
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from tests.support.net import free_port

REGION = "eu-west-1"
INVOKE_EVENT = "before-send.sagemaker-runtime.InvokeEndpoint"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server (every service) on 127.0.0.1 and a free port; yields its URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class _Raw(io.BytesIO):
    """What botocore reads a response body from (``read`` and ``stream``)."""

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _response(url: str, status: int, body: bytes, headers: dict[str, str]) -> AWSResponse:
    return AWSResponse(url, status, headers, _Raw(body))


def model_error(url: str, status: int, body: str) -> AWSResponse:
    """SageMaker's answer when the container answers ``status`` (not 200)."""
    payload = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if status < 500 else "SERVER_ERROR_FROM_MODEL",
        "OriginalStatusCode": status,
        "OriginalMessage": body,
        "LogStreamArn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/test",
        "Message": f'Received error ({status}) from primary with message "{body[:200]}"',
    }
    headers = {
        "x-amzn-ErrorType": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/",
        "content-type": "application/json",
    }
    return _response(url, 424, json.dumps(payload).encode(), headers)


class SageMakerShim:
    """The before-send hook: InvokeEndpoint -> ``POST /invocations`` of the container app.

    ``calls`` holds every request body, ``served`` those the container answered. ``before``
    (if set) runs first with the body and may return a status to answer instead (to simulate
    the endpoint failing).
    """

    def __init__(self, container: TestClient) -> None:
        self.container = container
        self.calls: list[bytes] = []
        self.served: list[bytes] = []
        self.before: Callable[[bytes], int | None] | None = None
        self._lock = threading.Lock()

    def __call__(self, request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse:
        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        if not isinstance(body, bytes):
            body = body.read()
        with self._lock:
            self.calls.append(body)
        if self.before is not None and (status := self.before(body)) is not None:
            return model_error(request.url, status, '{"error": {"message": "injected"}}')
        with self._lock:
            self.served.append(body)
        content_type = request.headers.get("Content-Type") or b""
        if isinstance(content_type, bytes):
            content_type = content_type.decode()
        headers = {"content-type": content_type}
        answer = self.container.post("/invocations", content=body, headers=headers)
        if answer.status_code != 200:
            return model_error(request.url, answer.status_code, answer.text)
        return _response(request.url, 200, answer.content, {"content-type": "application/json"})

    def bodies(self, served: bool = False) -> list[dict[str, Any]]:
        """The JSON request bodies sent so far (``served``: only those the container answered)."""
        return [json.loads(b) for b in (self.served if served else self.calls) if b[:1] == b"{"]


@contextlib.contextmanager
def sagemaker_answered_by(shim: SageMakerShim) -> Iterator[None]:
    """Every boto3 client created meanwhile from the default session sends InvokeEndpoint to
    ``shim`` (clients copy the session's event hooks when they are created)."""
    session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register(INVOKE_EVENT, shim, unique_id="skinscan-test-shim")
    try:
        yield
    finally:
        session.events.unregister(INVOKE_EVENT, unique_id="skinscan-test-shim")


def create_bucket(endpoint: str, bucket: str) -> None:
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )


def s3_event_for(endpoint: str, bucket: str, key: str) -> dict[str, Any]:
    """The ObjectCreated event S3 sends for the object now at ``key`` (its real ETag, size)."""
    from skinscan_common.s3events import S3Object, object_created_event

    head = boto3.client("s3", endpoint_url=endpoint, region_name=REGION).head_object(
        Bucket=bucket, Key=key
    )
    obj = S3Object(bucket, key, head["ETag"].strip('"'), int(head["ContentLength"]))
    return object_created_event([obj], region=REGION)
