"""functions/authorizer: the HTTP API Lambda authorizer (payload 2.0, simple responses)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "authorizer" / "app.py"
SECRET = "s" * 64
USER = str(uuid.uuid4())
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:skinscan/dev/jwt-signing-key"

jwt = pytest.importorskip("jwt", reason="pyjwt is a runtime dependency of the shared layer")
if importlib.util.find_spec("skinscan_common") is None:  # not installed: use the layer's source
    sys.path.insert(0, str(ROOT / "layers" / "common"))

from skinscan_common.config import get_settings  # noqa: E402
from skinscan_common.security import secrets as shared_secrets  # noqa: E402
from skinscan_common.security.tokens import issue_access_token  # noqa: E402


def _clear_caches() -> None:
    get_settings.cache_clear()
    shared_secrets._from_secrets_manager.cache_clear()


@pytest.fixture
def authorizer(monkeypatch, tmp_path):
    for var in ("SKINSCAN_JWT_SECRET_ARN", "SKINSCAN_JWT_ISSUER"):
        monkeypatch.setenv(var, "")  # so that monkeypatch restores the original state
        monkeypatch.delenv(var)
    monkeypatch.setenv("SKINSCAN_JWT_SECRET", SECRET)
    monkeypatch.setenv("SKINSCAN_DATA_DIR", str(tmp_path))
    _clear_caches()
    spec = importlib.util.spec_from_file_location("skinscan_authorizer_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    _clear_caches()


def token(secret: str = SECRET, **overrides) -> str:
    now = int(time.time())
    claims = {"sub": USER, "iss": "skinscan", "iat": now, "exp": now + 900, "typ": "access"}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


def event(authorization: str | None, header: str = "authorization") -> dict:
    """An HTTP API REQUEST authorizer event, payload format 2.0 (trimmed)."""
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers[header] = authorization
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/$default/GET/v1/predictions",
        "identitySource": [authorization] if authorization is not None else [],
        "routeKey": "GET /v1/predictions",
        "headers": headers,
        "requestContext": {"http": {"method": "GET", "path": "/v1/predictions"}},
    }


def test_a_token_issued_by_the_shared_layer_is_authorized_with_the_user_id(authorizer):
    issued = issue_access_token(uuid.UUID(USER), SECRET.encode(), ttl_s=900)
    result = authorizer.handler(event(f"Bearer {issued}"))
    assert result == {"isAuthorized": True, "context": {"user_id": USER}}


def test_header_name_and_scheme_are_case_insensitive(authorizer):
    result = authorizer.handler(event(f"bearer {token()}", header="Authorization"))
    assert result["isAuthorized"] is True


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not-a-jwt"],
)
def test_missing_or_malformed_credentials_are_refused(authorizer, authorization):
    assert authorizer.handler(event(authorization)) == {"isAuthorized": False}


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 60},  # expired (beyond the 5 s leeway)
        {"exp": None},
        {"iss": "someone-else"},
        {"iss": None},
        {"sub": None},
        {"sub": "not-a-user-id"},
        {"typ": None},
        {"typ": "refresh"},
        {"typ": "guest"},
    ],
)
def test_tokens_that_are_not_valid_access_tokens_are_refused(authorizer, claims):
    assert authorizer.handler(event(f"Bearer {token(**claims)}")) == {"isAuthorized": False}


def test_a_token_signed_with_another_key_is_refused(authorizer):
    assert authorizer.handler(event(f"Bearer {token(secret='x' * 64)}")) == {"isAuthorized": False}


def test_alg_none_and_other_algorithms_are_refused(authorizer):
    now = int(time.time())
    claims = {"sub": USER, "iss": "skinscan", "iat": now, "exp": now + 900, "typ": "access"}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert authorizer.handler(event(f"Bearer {unsigned}")) == {"isAuthorized": False}
    hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    assert authorizer.handler(event(f"Bearer {hs512}")) == {"isAuthorized": False}


def test_the_issuer_is_configurable(authorizer, monkeypatch):
    monkeypatch.setenv("SKINSCAN_JWT_ISSUER", "skinscan-prod")
    _clear_caches()
    assert authorizer.handler(event(f"Bearer {token(iss='skinscan-prod')}"))["isAuthorized"] is True
    assert authorizer.handler(event(f"Bearer {token()}")) == {"isAuthorized": False}


def _fake_secrets_manager(monkeypatch, secret_string: str) -> list[str]:
    boto3 = pytest.importorskip("boto3")
    calls: list[str] = []

    class FakeSecretsManager:
        def get_secret_value(self, SecretId):
            calls.append(SecretId)
            return {"SecretString": secret_string}

    monkeypatch.setattr(boto3, "client", lambda service, **kw: FakeSecretsManager())
    monkeypatch.delenv("SKINSCAN_JWT_SECRET")
    monkeypatch.setenv("SKINSCAN_JWT_SECRET_ARN", SECRET_ARN)
    _clear_caches()
    return calls


def test_the_key_is_read_from_secrets_manager_once_per_container(authorizer, monkeypatch):
    calls = _fake_secrets_manager(monkeypatch, SECRET)  # GenerateSecretString: the bare key
    for _ in range(3):
        assert authorizer.handler(event(f"Bearer {token()}"))["isAuthorized"] is True
    assert calls == [SECRET_ARN]


def test_a_json_secret_with_a_key_field_is_accepted(authorizer, monkeypatch):
    _fake_secrets_manager(monkeypatch, json.dumps({"key": SECRET}))
    assert authorizer.handler(event(f"Bearer {token()}"))["isAuthorized"] is True


def test_no_key_configured_is_a_deployment_error_not_a_refusal(authorizer, monkeypatch):
    monkeypatch.delenv("SKINSCAN_JWT_SECRET")
    _clear_caches()
    with pytest.raises(authorizer.AuthorizerConfigError):
        authorizer.handler(event(f"Bearer {token()}"))


def test_a_missing_header_is_refused_before_the_key_is_needed(authorizer, monkeypatch):
    monkeypatch.delenv("SKINSCAN_JWT_SECRET")  # would raise if the key were read
    _clear_caches()
    assert authorizer.handler(event(None)) == {"isAuthorized": False}
