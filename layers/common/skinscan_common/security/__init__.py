"""Password hashing, access tokens, opaque tokens and the master secret."""

from skinscan_common.security.passwords import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    needs_rehash,
    stored_as_typed,
    verify_password,
)
from skinscan_common.security.secrets import jwt_key, master_secret, signing_key
from skinscan_common.security.tokens import (
    ALGORITHMS,
    AccessClaims,
    TokenError,
    hash_token,
    issue_access_token,
    new_opaque_token,
    verify_access_token,
)

__all__ = [
    "ALGORITHMS",
    "AccessClaims",
    "PasswordPolicyError",
    "TokenError",
    "check_policy",
    "hash_password",
    "hash_token",
    "issue_access_token",
    "jwt_key",
    "master_secret",
    "needs_rehash",
    "new_opaque_token",
    "signing_key",
    "stored_as_typed",
    "verify_access_token",
    "verify_password",
]
