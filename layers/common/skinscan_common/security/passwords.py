"""Password hashing with argon2id, and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# Verified against when the email is unknown, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("skinscan-dummy-password-for-timing")


class PasswordPolicyError(ValueError):
    """The password does not meet the policy."""


def check_policy(password: str, email: str, min_length: int = 10, max_length: int = 256) -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is acceptable."""
    if len(password) < min_length:
        raise PasswordPolicyError(f"password must be at least {min_length} characters")
    if len(password) > max_length:
        raise PasswordPolicyError(f"password must be at most {max_length} characters")
    if password.strip() != password or not password.strip():
        raise PasswordPolicyError("password must not start or end with whitespace")
    if len(set(password)) < 4:
        raise PasswordPolicyError("password is too repetitive")
    if password.lower() == email.lower() or password.lower() in email.lower():
        raise PasswordPolicyError("password must not contain the email address")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` burns the same time and answers False."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
