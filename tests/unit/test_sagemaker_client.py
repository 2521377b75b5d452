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
