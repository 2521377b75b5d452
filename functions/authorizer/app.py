"""HTTP API Lambda authorizer: verifies SkinScan's HS256 access tokens at the gateway.

REQUEST authorizer, payload format 2.0, simple responses (see ``infra/template.yaml``). It guards
the routes that always need a signed-in user (``GET /v1/predictions``, ``GET``/``DELETE
/v1/auth/me``). Routes where signing in is optional (predict, uploads, one prediction read with a
guest capability token, logout) carry no authorizer: the app checks the caller itself. The apps
stay authoritative either way; this is a cheap first gate.

Verification is the shared layer's own (``skinscan_common.security``), so the gateway and the apps
agree on what an access token is: HS256 only, signed with the master secret
(``SKINSCAN_JWT_SECRET`` locally, ``SKINSCAN_JWT_SECRET_ARN`` in AWS, read once per container),
``typ`` = ``access``, ``iss`` = ``SKINSCAN_JWT_ISSUER``, unexpired, ``sub`` a user id.

Response: ``{"isAuthorized": bool, "context": {"user_id": ...}}``. API Gateway itself answers 401
when the ``Authorization`` header is missing (it is the identity source) and 403 when this returns
``isAuthorized: false``. Apps find the user at ``requestContext.authorizer.lambda.user_id``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from skinscan_common.config import get_settings
from skinscan_common.observability import logger, with_lambda_context
from skinscan_common.security.secrets import jwt_key
from skinscan_common.security.tokens import TokenError, verify_access_token

DENY: dict[str, Any] = {"isAuthorized": False}


class AuthorizerConfigError(RuntimeError):
    """No signing key is configured: a deployment error (API Gateway answers 500), not a refusal."""


def bearer_token(event: dict[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    value = headers.get("authorization")
    if not value and event.get("identitySource"):
        value = event["identitySource"][0]
    if not value:
        return None
    scheme, _, token = str(value).strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


# The shared JSON logger (redacted, like every function's), each line with the invocation and
# API Gateway's request id (the event's requestContext.requestId, as in the access log).
@with_lambda_context(correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    token = bearer_token(event)
    if token is None:
        return DENY
    settings = get_settings()
    secret_set = settings.jwt_secret is not None and settings.jwt_secret.get_secret_value()
    if not secret_set and not settings.jwt_secret_arn:
        # The shared layer would fall back to a random local key and refuse everyone silently.
        raise AuthorizerConfigError("set SKINSCAN_JWT_SECRET_ARN (or SKINSCAN_JWT_SECRET)")
    try:
        claims = verify_access_token(token, jwt_key(settings), issuer=settings.jwt_issuer)
    except TokenError as exc:
        logger.info("token refused", extra={"reason": str(exc)})
        return DENY
    return {"isAuthorized": True, "context": {"user_id": str(claims.user_id)}}
