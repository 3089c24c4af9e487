"""Webhook secrets: generation, and encryption at rest when QUEUE_HOOKS_SECRET_KEY is set.

An encrypted secret is stored as `enc:` + a Fernet token; a plain `whsec_` secret written by
SQL keeps working (contract §7). Fernet derives nothing itself, so the operator's key of any
length is stretched with SHA-256 into the 32 bytes Fernet wants.
"""

from __future__ import annotations

import base64
import hashlib
import secrets as _random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

PREFIX = "enc:"


class SecretError(Exception):
    pass


def generate() -> str:
    return "whsec_" + base64.b64encode(_random.token_bytes(32)).decode()


def _fernet(key: str) -> Fernet:
    # Imported when a secret is sealed or opened, not at start: cryptography's OpenSSL
    # bindings are 8.5 MB of every worker's RSS (issue 13, cold start), and a worker whose
    # schemas hold plain `whsec_` secrets never needs them.
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def seal(secret: str, key: str | None) -> str:
    return secret if key is None else PREFIX + _fernet(key).encrypt(secret.encode()).decode()


def unseal(stored: str | None, key: str | None) -> str | None:
    if stored is None or not stored.startswith(PREFIX):
        return stored
    if key is None:
        raise SecretError("secret is encrypted, but QUEUE_HOOKS_SECRET_KEY is not set")
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(key).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretError("secret cannot be decrypted with QUEUE_HOOKS_SECRET_KEY") from None
