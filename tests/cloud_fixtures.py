"""The cloud stack in one process: moto (S3, SQS) over HTTP, PostgreSQL, the real container.

A test module imports ``cloud_fixture`` and ``moto_url_fixture`` to get the ``cloud``
fixture (the engine fixtures it needs come from ``tests/conftest.py``). The functions read
their settings from ``SKINSCAN_*`` environment variables, as in Lambda. moto's mock Lambda
runs functions only in Docker, which the tests don't have: the tests call each function's
``handler`` themselves with the event AWS would send, built from the real objects (key,
ETag, size) moto stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from skinscan_common.config import Settings, get_settings
from skinscan_common.deps import reset_caches
from skinscan_engine.engine import Engine
from skinscan_engine.serving import ScoringService
from tests.support.aws import REGION, SageMakerShim, create_bucket, moto_server
from tests.support.aws import sagemaker_answered_by as _answered_by

ENDPOINT_NAME = "skinscan-test"


@dataclass
class Cloud:
    """Handles on the in-process cloud."""

    moto: str
    bucket: str
    queue_url: str
    settings: Settings  # what every function sees
    shim: SageMakerShim

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.moto, region_name=REGION)

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.moto, region_name=REGION)


@pytest.fixture(scope="module", name="moto_url")
def moto_url_fixture() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(name="cloud")
def cloud_fixture(
    settings: Settings,
    moto_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cloud]:
    """A fresh bucket and chunk queue, the functions' environment, the container answering."""
    bucket = f"skinscan-test-{uuid.uuid4().hex[:12]}"
    create_bucket(moto_url, bucket)
    queue_url = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION).create_queue(
        QueueName=f"{bucket}-chunks"
    )["QueueUrl"]
    env = {
        "SKINSCAN_DATABASE_URL": settings.database_url,
        "SKINSCAN_DATA_DIR": str(settings.data_dir),
        "SKINSCAN_STORAGE_BACKEND": "s3",
        "SKINSCAN_BUCKET": bucket,
        "SKINSCAN_S3_ENDPOINT_URL": moto_url,
        "SKINSCAN_AWS_REGION": REGION,
        "SKINSCAN_ENDPOINT_MODE": "sagemaker",
        "SKINSCAN_ENDPOINT_NAME": ENDPOINT_NAME,
        "SKINSCAN_BATCH_QUEUE_URL": queue_url,
        "SKINSCAN_PUBLIC_BASE_URL": "http://testserver",
        "AWS_ENDPOINT_URL_SQS": moto_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reset_caches()
    function_settings = get_settings()
    service = ScoringService(engine)

    from skinscan_engine.server import create_app

    container = create_app(lambda: service, settings=function_settings, background_load=False)
    with TestClient(container, raise_server_exceptions=False) as client:  # answers 500s
        shim = SageMakerShim(client)
        with _answered_by(shim):
            yield Cloud(moto_url, bucket, queue_url, function_settings, shim)
    reset_caches()
    get_settings.cache_clear()
