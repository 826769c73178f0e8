"""PostgreSQL SCRAM-SHA-256 password verifiers (RFC 5802 / 7677), as stored in pg_authid.

Lets the blueprint set and check a role's password without the clear password ever appearing
in a command line or a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def make_verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Returns 'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>' for `password`."""
    salt = salt if salt is not None else os.urandom(16)
    stored_key, server_key = _keys(password, salt, iterations)
    encode = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{encode(salt)}${encode(stored_key)}:{encode(server_key)}"


def verify(password: str, verifier: str) -> bool:
    """Returns True when `verifier` (as stored by PostgreSQL) was made from `password`."""
    try:
        method, iterations_salt, keys = verifier.split("$")
        iterations, salt = iterations_salt.split(":")
        stored_key, server_key = keys.split(":")
        if method != "SCRAM-SHA-256":
            return False
        expected = _keys(password, base64.b64decode(salt), int(iterations))
        stored = (base64.b64decode(stored_key), base64.b64decode(server_key))
    except ValueError:  # binascii.Error, raised for bad base64, is a ValueError
        return False
    return hmac.compare_digest(expected[0], stored[0]) and hmac.compare_digest(expected[1], stored[1])
