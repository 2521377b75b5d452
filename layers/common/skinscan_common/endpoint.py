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
from skinscan_common.errors import AppError

LOCAL_CLIENT = "skinscan_engine.local_client:LocalEndpointClient"


# SageMaker's own answers that mean "busy or starting, try again shortly" (not the container's).
_BUSY_ERRORS = {
    "ThrottlingException",
    "ModelNotReadyException",
    "ServiceUnavailable",
    "InternalDependencyException",
    "InternalFailure",
}
# Transport failures botocore raises itself: the endpoint did not answer in time or at all.
_UNREACHABLE = {
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "EndpointConnectionError",
    "ConnectionClosedError",
}
RETRY_AFTER_S = 5


class EndpointError(RuntimeError):
    """The model endpoint could not be reached or answered an error.

    ``status_code``, ``code`` and ``detail`` are the container's own HTTP status, error code and
    message when it answered one (SageMaker's ``ModelError`` carries them). A 4xx other than
    408/429 is ``permanent``: retrying the same request cannot help. ``busy`` means trying again
    shortly may (throttled, starting, timed out, unreachable). ``str()`` is for logs.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        *,
        code: str | None = None,
        detail: str = "",
        busy: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.busy = busy or status_code in (429, 503)

    @property
    def permanent(self) -> bool:
        code = self.status_code
        return code is not None and 400 <= code < 500 and code not in (408, 429)

    def to_app_error(self) -> AppError:
        """The answer a person gets: the container's refusal as it gave it, else 503 or 502."""
        if self.permanent and self.status_code is not None:
            return AppError(
                self.detail or "the model could not read this photo",
                code=self.code or "invalid_image",
                status_code=self.status_code,
            )
        if self.busy:
            return AppError(
                "the model is busy or starting; please try again shortly",
                code="model_busy",
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return AppError(
            "the model could not score the photo right now; please try again",
            code="model_unavailable",
            status_code=502,
        )


def _model_error(exc: Exception) -> EndpointError:
    """An :class:`EndpointError` with the container's status, code and message when it sent them."""
    response = getattr(exc, "response", None) or {}
    status = response.get("OriginalStatusCode")
    aws_code = str((response.get("Error") or {}).get("Code") or "")
    detail, code = str(response.get("OriginalMessage") or ""), None
    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
        error = json.loads(detail)["error"]
        detail, code = str(error["message"]), error.get("code")
    kind = aws_code or type(exc).__name__
    message = f"model endpoint failed: {kind}"
    if status is not None:
        message += f" ({status}{': ' + detail[:500] if detail else ''})"
    return EndpointError(
        message,
        int(status) if status is not None else None,
        code=str(code) if code else None,
        detail=detail[:500] if status is not None else "",
        busy=aws_code in _BUSY_ERRORS or type(exc).__name__ in _UNREACHABLE,
    )


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
    """``sagemaker-runtime`` ``invoke_endpoint`` on the model container.

    ``timeout_s`` bounds the wait for an answer, with no retry: it must end before the calling
    function's own timeout, so the caller answers (503, a failed row) instead of being killed.
    """

    def __init__(
        self,
        endpoint_name: str,
        region: str | None = None,
        client: Any = None,
        timeout_s: float = 20.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.endpoint_name = endpoint_name
        config = Config(
            connect_timeout=min(5.0, timeout_s),
            read_timeout=timeout_s,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        self.client = client or boto3.client("sagemaker-runtime", region_name=region, config=config)

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
        return SageMakerEndpointClient(
            settings.endpoint_name, settings.aws_region, timeout_s=settings.endpoint_timeout_s
        )
    cls = _load(LOCAL_CLIENT)
    return cls(settings)
