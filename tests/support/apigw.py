"""API Gateway HTTP API (payload 2.0) events, and calling a Lambda handler with them."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from skinscan.commands.invoke import LambdaContext


def http_event(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event for ``method url``."""
    parts = urlsplit(url)
    hdrs = {"host": "api.skinscan.test", "user-agent": "pytest"}
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    raw_body: str | None = None
    is_b64 = False
    if json_body is not None:
        raw_body = json.dumps(json_body)
        hdrs.setdefault("content-type", "application/json")
    elif isinstance(body, bytes):
        raw_body, is_b64 = base64.b64encode(body).decode(), True
    elif body is not None:
        raw_body = body
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "test",
            "domainName": "api.skinscan.test",
            "http": {
                "method": method.upper(),
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": is_b64,
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query))
    if raw_body is not None:
        event["body"] = raw_body
    return event


def call_handler(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    """Run ``handler``; returns (status, decoded JSON body or text or None)."""
    response = handler(event, LambdaContext(function_name="test"))
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("latin-1")
    if not body:
        return response["statusCode"], None
    try:
        return response["statusCode"], json.loads(body)
    except ValueError:
        return response["statusCode"], body
