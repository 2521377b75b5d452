"""The seam to the model: in-process engine locally, a SageMaker endpoint in AWS.

The layer never imports torch: the local client lives in ``skinscan_engine`` and is
imported only when ``endpoint_mode == "local"`` asks for it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from typing import Any, Protocol, runtime_checkable

from skinscan_common.config import Settings

LOCAL_CLIENT = "skinscan_engine.local_client:LocalEndpointClient"


class EndpointError(RuntimeError):
    """The model endpoint could not be reached or answered an error.

    ``status_code`` is the container's own HTTP status when it answered one (SageMaker's
    ``ModelError`` carries it); a 4xx other than 408/429 is ``permanent``: retrying the same
    request cannot help.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def permanent(self) -> bool:
        code = self.status_code
        return code is not None and 400 <= code < 500 and code not in (408, 429)


def _model_error(exc: Exception) -> EndpointError:
    """An :class:`EndpointError` with the container's status and message when it sent them."""
    response = getattr(exc, "response", None) or {}
    status = response.get("OriginalStatusCode")
    detail = str(response.get("OriginalMessage") or "")
    with contextlib.suppress(ValueError, KeyError, TypeError):
        detail = json.loads(detail)["error"]["message"]
    message = f"model endpoint failed: {type(exc).__name__}"
    if status is not None:
        message += f" ({status}{': ' + detail[:500] if detail else ''})"
    return EndpointError(message, int(status) if status is not None else None)


@runtime_checkable
class EndpointClient(Protocol):
    """Scores images; answers are dicts shaped like ``schemas.PredictionResult`` plus extras."""

    def predict_image(self, image: bytes, content_type: str) -> dict[str, Any]:
        """Score one image sent inline (result fields plus heatmap PNG bytes fields)."""
        ...

    def score_object(self, bucket: str, key: str, prediction_id: str) -> dict[str, Any]:
        """Score an image already in object storage."""
        ...

    def score_objects(self, bucket: str, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Score stored images for a batch job (``services.batch_scoring``), one answer each."""
        ...


class SageMakerEndpointClient:
    """``sagemaker-runtime`` ``invoke_endpoint`` on the model container."""

    def __init__(self, endpoint_name: str, region: str | None = None, client: Any = None) -> None:
        import boto3

        self.endpoint_name = endpoint_name
        self.client = client or boto3.client("sagemaker-runtime", region_name=region)

    def _invoke(self, body: bytes, content_type: str, **extra: str) -> dict[str, Any]:
        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
                **extra,
            )
            return json.loads(response["Body"].read())
        except Exception as exc:
            raise _model_error(exc) from exc

    def predict_image(self, image: bytes, content_type: str) -> dict[str, Any]:
        # Synchronous callers show the heatmaps at once: ask the container to inline them.
        return self._invoke(image, content_type, CustomAttributes="heatmaps=base64")

    def score_object(self, bucket: str, key: str, prediction_id: str) -> dict[str, Any]:
        body = json.dumps({"bucket": bucket, "key": key, "prediction_id": prediction_id})
        return self._invoke(body.encode(), "application/json")

    def score_objects(self, bucket: str, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        body = json.dumps({"bucket": bucket, "items": items})
        answer = self._invoke(body.encode(), "application/json")
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise EndpointError("model endpoint answered a batch without one result per item")
        return results


def _load(path: str) -> type:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EndpointError(
            f"endpoint_mode=local needs {module_name} (the inference engine) and its "
            "dependencies: install with `pip install -e '.[ml]'`, or set "
            "SKINSCAN_ENDPOINT_MODE=sagemaker"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise EndpointError(f"{module_name} has no {attr}") from exc


def get_endpoint_client(settings: Settings) -> EndpointClient:
    """The client ``settings.endpoint_mode`` asks for."""
    if settings.endpoint_mode == "sagemaker":
        return SageMakerEndpointClient(settings.endpoint_name, settings.aws_region)
    cls = _load(LOCAL_CLIENT)
    return cls(settings)
