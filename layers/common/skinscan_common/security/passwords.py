"""Password hashing with argon2id, and the password policy."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# Verified against when the email is unknown, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("skinscan-dummy-password-for-timing")


class PasswordPolicyError(ValueError):
    """The password does not meet the policy."""


def normalise_password(password: str) -> str:
    """NFKC: the same visible password typed on another keyboard or system is the same password
    (NIST SP 800-63B); ``é`` may come as one code point or as ``e`` and an accent."""
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, email: str, min_length: int = 10, max_length: int = 256) -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is acceptable."""
    password = normalise_password(password)
    if len(password) < min_length:
        raise PasswordPolicyError(f"password must be at least {min_length} characters")
    if len(password) > max_length:
        raise PasswordPolicyError(f"password must be at most {max_length} characters")
    if password.strip() != password or not password.strip():
        raise PasswordPolicyError("password must not start or end with whitespace")
    if len(set(password)) < 4:
        raise PasswordPolicyError("password is too repetitive")
    if email and (email.lower() in password.lower() or password.lower() in email.lower()):
        raise PasswordPolicyError("password must not contain the email address")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (normalised)."""
    return _hasher.hash(normalise_password(password))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` burns the same time and answers False.

    Hashes made before passwords were normalised hold the password as it was typed: when the
    normalised form does not match, the typed form is tried (:func:`stored_as_typed` tells the
    caller to hash it again, normalised).
    """
    if password_hash is None:
        _verify(_DUMMY_HASH, password)
        return False
    normal = normalise_password(password)
    if _verify(password_hash, normal):
        return True
    return normal != password and _verify(password_hash, password)


def stored_as_typed(password: str) -> bool:
    """Whether a hash that matched ``password`` may hold it un-normalised (rehash it)."""
    return normalise_password(password) != password


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
