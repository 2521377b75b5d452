"""Access tokens (JWT, HS256 only) and opaque tokens hashed at rest."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

ALGORITHMS = ["HS256"]  # explicit allow-list: never "none", never taken from the token
ACCESS_TYPE = "access"


class TokenError(Exception):
    """An access token that is missing, malformed, forged, expired or of the wrong type."""


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: uuid.UUID
    expires_at: int
    token_id: str
    #: The sign-in session (refresh-token family) the token was issued in; None in tokens
    #: from before sessions were named (the apps refuse those, the stateless authorizer not).
    session_id: uuid.UUID | None = None


def issue_access_token(
    user_id: uuid.UUID,
    key: bytes,
    ttl_s: int,
    issuer: str = "skinscan",
    session_id: uuid.UUID | None = None,
) -> str:
    """A signed access JWT for ``user_id`` valid for ``ttl_s`` seconds, in sign-in session
    ``session_id`` (claim ``sid``: the apps refuse the token once that session has ended)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user_id),
        "typ": ACCESS_TYPE,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl_s),
        "jti": secrets.token_hex(8),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, key, algorithm=ALGORITHMS[0], headers={"typ": "JWT"})


def verify_access_token(token: str, key: bytes, issuer: str = "skinscan") -> AccessClaims:
    """Verify signature, algorithm, expiry, issuer and ``typ``; raise :class:`TokenError`."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "typ", "iss"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid token") from exc
    if claims.get("typ") != ACCESS_TYPE:
        raise TokenError("wrong token type")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        session_id = uuid.UUID(str(claims["sid"])) if "sid" in claims else None
    except ValueError as exc:
        raise TokenError("invalid token") from exc
    return AccessClaims(
        user_id=user_id,
        expires_at=int(claims["exp"]),
        token_id=claims.get("jti", ""),
        session_id=session_id,
    )


def new_opaque_token(nbytes: int = 32) -> str:
    """A random URL-safe token (refresh tokens, guest capability tokens)."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """The sha256 hex digest stored instead of an opaque token."""
    return hashlib.sha256(token.encode()).hexdigest()
