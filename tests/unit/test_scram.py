"""SCRAM-SHA-256 verifiers as PostgreSQL stores them, checked against an independent RFC 5802 computation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from phoenix.scram import make_verifier, verify


def rfc5802_verifier(password: str, salt: bytes, iterations: int) -> str:
    """PostgreSQL's verifier written out from RFC 5802 section 3, with its Hi() loop by hand (no pbkdf2_hmac)."""

    def hmac_sha256(key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()

    block = hmac_sha256(password.encode(), salt + (1).to_bytes(4, "big"))  # U1 = HMAC(str, salt + INT(1))
    salted_password = bytearray(block)
    for _ in range(iterations - 1):
        block = hmac_sha256(password.encode(), block)
        salted_password = bytearray(left ^ right for left, right in zip(salted_password, block, strict=True))
    client_key = hmac_sha256(bytes(salted_password), b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac_sha256(bytes(salted_password), b"Server Key")
    salt_text, stored_text, server_text = (base64.b64encode(raw).decode() for raw in (salt, stored_key, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt_text}${stored_text}:{server_text}"


def test_verifier_for_a_fixed_salt_matches_the_rfc_5802_computation():
    salt = bytes(range(16))

    verifier = make_verifier("postgres", salt=salt)

    assert verifier == rfc5802_verifier("postgres", salt, 4096)
    assert verifier.startswith("SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$")


def test_verifier_uses_a_fresh_random_salt_each_time():
    assert make_verifier("postgres") != make_verifier("postgres")


def test_right_password_verifies():
    assert verify("p@ss%word/:", make_verifier("p@ss%word/:"))


def test_wrong_password_does_not_verify():
    assert not verify("postgres!", make_verifier("postgres"))


def test_verifier_made_independently_verifies():
    assert verify("postgres", rfc5802_verifier("postgres", b"pepper-and-salt!", 4096))


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "md53175bce1d3201d16594cebf9d7eb3f9d",  # an md5 password, as older roles have
        "SCRAM-SHA-256$4096:c2FsdA==",
        "SCRAM-SHA-256$many:c2FsdA==$YQ==:YQ==",
        "SCRAM-SHA-256$0:c2FsdA==$YQ==:YQ==",
        "SCRAM-SHA-256$4096:c2FsdA==$a:b",  # keys that are not base64
        "SCRAM-SHA-256$4096:c2FsdA==$YQ==:YQ==",  # keys of the wrong length
        "SCRAM-SHA-1$4096:c2FsdA==$YQ==:YQ==",
    ],
)
def test_malformed_verifier_does_not_verify(verifier):
    assert verify("postgres", verifier) is False
