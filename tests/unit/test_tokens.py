"""Access tokens: only HS256 with our key, unexpired, of type access."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from skinscan_common.security import (
    TokenError,
    hash_token,
    issue_access_token,
    new_opaque_token,
    verify_access_token,
)

KEY = b"k" * 64
USER = uuid.uuid4()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**extra: object) -> dict:
    now = int(time.time())
    claims = {"sub": str(USER), "typ": "access", "iss": "skinscan", "iat": now, "exp": now + 60}
    claims.update(extra)
    return claims


def test_round_trip() -> None:
    claims = verify_access_token(issue_access_token(USER, KEY, 900), KEY)
    assert claims.user_id == USER
    assert claims.expires_at - time.time() == pytest.approx(900, abs=5)


def test_forged_signature_rejected() -> None:
    token = issue_access_token(USER, b"x" * 48, 900)
    with pytest.raises(TokenError):
        verify_access_token(token, KEY)


def test_tampered_payload_rejected() -> None:
    header, _, sig = issue_access_token(USER, KEY, 900).split(".")
    forged = f"{header}.{_b64(_claims(sub=str(uuid.uuid4())))}.{sig}"
    with pytest.raises(TokenError):
        verify_access_token(forged, KEY)


def test_alg_none_rejected() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(TokenError):
        verify_access_token(token, KEY)


def test_other_algorithm_rejected() -> None:
    token = jwt.encode(_claims(), KEY, algorithm="HS512")
    with pytest.raises(TokenError):
        verify_access_token(token, KEY)


def test_expired_rejected() -> None:
    token = jwt.encode(_claims(exp=int(time.time()) - 60), KEY, algorithm="HS256")
    with pytest.raises(TokenError, match="expired"):
        verify_access_token(token, KEY)


@pytest.mark.parametrize("typ", ["refresh", "guest", None])
def test_wrong_type_rejected(typ: str | None) -> None:
    claims = _claims(typ=typ) if typ else {k: v for k, v in _claims().items() if k != "typ"}
    with pytest.raises(TokenError):
        verify_access_token(jwt.encode(claims, KEY, algorithm="HS256"), KEY)


def test_wrong_issuer_rejected() -> None:
    with pytest.raises(TokenError):
        verify_access_token(jwt.encode(_claims(iss="evil"), KEY, algorithm="HS256"), KEY)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_rejected(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify_access_token(garbage, KEY)


def test_opaque_tokens_are_random_and_hashed() -> None:
    a, b = new_opaque_token(), new_opaque_token()
    assert a != b and len(a) >= 40
    assert hash_token(a) != a and len(hash_token(a)) == 64
