"""The SageMaker endpoint client: the request it sends and how it reports failures."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from skinscan_common.endpoint import EndpointError, SageMakerEndpointClient

RESULT = {"verdict": "benign", "p_malignant": 0.1, "heatmap_png_base64": "iVBORw0KGgo="}


def _client() -> tuple[SageMakerEndpointClient, Stubber]:
    runtime = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    return SageMakerEndpointClient("skinscan-test", client=runtime), Stubber(runtime)


def _body(payload: dict) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_predict_image_asks_for_inline_heatmaps() -> None:
    client, stub = _client()
    stub.add_response(
        "invoke_endpoint",
        {"Body": _body(RESULT), "ContentType": "application/json"},
        {
            "EndpointName": "skinscan-test",
            "ContentType": "image/jpeg",
            "Accept": "application/json",
            "Body": b"\xff\xd8jpeg",
            "CustomAttributes": "heatmaps=base64",
        },
    )
    with stub:
        assert client.predict_image(b"\xff\xd8jpeg", "image/jpeg") == RESULT
    stub.assert_no_pending_responses()


def test_container_errors_surface_with_their_status_and_message() -> None:
    client, stub = _client()
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (415) from primary",
        http_status_code=424,
        response_meta={},
        modeled_fields={
            "OriginalStatusCode": 415,
            "OriginalMessage": json.dumps({"error": {"message": "not a JPEG or PNG"}}),
        },
    )
    with stub, pytest.raises(EndpointError, match=r"415: not a JPEG or PNG"):
        client.predict_image(b"text", "image/jpeg")


def _model_error(stub: Stubber, status: int, body: dict) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        f"Received client error ({status}) from primary",
        http_status_code=424,
        response_meta={},
        modeled_fields={"OriginalStatusCode": status, "OriginalMessage": json.dumps(body)},
    )


@pytest.mark.parametrize(
    ("status", "body", "answer"),
    [
        (
            422,
            {"error": {"code": "corrupt", "message": "The image is truncated."}},
            (422, "corrupt"),
        ),
        (
            413,
            {"error": {"code": "too_many_pixels", "message": "Too big."}},
            (413, "too_many_pixels"),
        ),
        (415, {"error": {"message": "not a JPEG or PNG"}}, (415, "invalid_image")),
        (503, {"error": {"message": "loading"}}, (503, "model_busy")),
        (500, {"error": {"message": "Traceback ..."}}, (502, "model_unavailable")),
    ],
)
def test_container_answers_become_the_api_answer(status: int, body: dict, answer: tuple) -> None:
    client, stub = _client()
    _model_error(stub, status, body)
    with stub, pytest.raises(EndpointError) as raised:
        client.predict_image(b"\xff\xd8jpeg", "image/jpeg")
    error = raised.value.to_app_error()
    assert (error.status_code, error.code) == answer
    if status < 500:
        assert error.message == body["error"]["message"]  # the container's own words
    else:
        assert "Traceback" not in error.message


@pytest.mark.parametrize(
    "aws_code", ["ThrottlingException", "ModelNotReadyException", "ServiceUnavailable"]
)
def test_sagemaker_busy_is_503_with_retry_after(aws_code: str) -> None:
    client, stub = _client()
    stub.add_client_error("invoke_endpoint", aws_code, "slow down", http_status_code=400)
    with stub, pytest.raises(EndpointError) as raised:
        client.score_object("b", "uploads/guest/x", "x")
    error = raised.value.to_app_error()
    assert (error.status_code, error.code) == (503, "model_busy")
    assert error.headers == {"Retry-After": "5"}
    assert not raised.value.permanent


def test_a_slow_endpoint_gives_up_before_the_function_does() -> None:
    """No botocore retries and a read timeout of ``timeout_s``: the function, not Lambda's own
    timeout, decides what the caller hears."""
    client = SageMakerEndpointClient("skinscan-test", region="eu-west-1", timeout_s=12.5)
    config = client.client.meta.config
    assert config.read_timeout == 12.5 and config.connect_timeout <= 5
    assert config.retries["total_max_attempts"] == 1  # one try: a retry would outlast 29 s
