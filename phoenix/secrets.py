"""Secrets: age-encrypted YAML in git, decrypted in memory; generated for throwaway environments.

A real environment's secrets live in inventories/secrets/<env>.yml.age (ASCII-armoured age),
encrypted to the public keys in inventories/secrets/<env>.recipients and decrypted with the
operator's identity file (PHOENIX_AGE_IDENTITY, default ~/.config/phoenix/age-identity.txt).
A throwaway environment generates its secrets once into the local state directory (mode 0600),
one file per sandbox, so that every converge of the same sandbox sees the same values.
"""

from __future__ import annotations

import copy
import os
import secrets as random_source
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pyrage
import yaml

from phoenix import archive_plan, backup_plan, strict_yaml
from phoenix.errors import PhoenixError
from phoenix.sandbox_state import state_root

if TYPE_CHECKING:
    from phoenix.inventory import Environment

DEFAULT_IDENTITY = Path.home() / ".config" / "phoenix" / "age-identity.txt"


class Secrets:
    """A read-only mapping of secret values whose printed form never shows them."""

    def __init__(self, values: dict[str, object], source: str):
        self._values = values
        self.source = source

    def __repr__(self) -> str:
        return f"<Secrets from {self.source}: {', '.join(sorted(self._values))}>"

    __str__ = __repr__

    def to_json(self) -> str:
        """What `pyinfra ... debug-inventory` prints for the secrets: their source and names, never values."""
        return repr(self)

    def get(self, key: str) -> str:
        """Returns the secret `key` (dotted for nested: restic_passwords.web1); raises PhoenixError when missing."""
        value = _lookup(self._values, key)
        if value in (None, ""):
            raise PhoenixError(f"{self.source}: missing secret '{key}'")
        return str(value)

    def get_mapping(self, key: str) -> dict[str, str]:
        """Returns the optional mapping `key` (such as backup_environment.web1), empty when absent."""
        value = _lookup(self._values, key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise PhoenixError(f"{self.source}: secret '{key}' must be a mapping of names to values")
        return {str(name): str(item) for name, item in value.items()}

    def borrowing(self, lender: Secrets, keys: list[str]) -> Secrets:
        """Returns these secrets with the dotted `keys` taken from `lender` (those it has)."""
        values = copy.deepcopy(self._values)
        for dotted in keys:
            value = _lookup(lender._values, dotted)
            if value is None:
                continue
            section, _, key = dotted.rpartition(".")
            target = values.setdefault(section, {}) if section else values
            target[key] = copy.deepcopy(value)
        return Secrets(values, f"{self.source} + {lender.source}")

    def database_password(self, user: str) -> str:
        """Returns the password of database role `user`."""
        passwords = self._values.get("database_passwords") or {}
        if user not in passwords:
            raise PhoenixError(f"{self.source}: missing secret 'database_passwords.{user}'")
        return str(passwords[user])


def secrets_paths(environment_file: Path, name: str) -> tuple[Path, Path]:
    """Returns (encrypted secrets file, recipients file) of environment `name`."""
    folder = environment_file.parent / "secrets"
    return folder / f"{name}.yml.age", folder / f"{name}.recipients"


def identity_path() -> Path:
    """Returns the operator's age identity file."""
    return Path(os.environ.get("PHOENIX_AGE_IDENTITY") or DEFAULT_IDENTITY)


def read_identity(path: Path) -> pyrage.x25519.Identity:
    """Returns the age identity in `path`; raises PhoenixError when it is missing or malformed."""
    if not path.exists():
        raise PhoenixError(
            f"{path}: age identity not found; set PHOENIX_AGE_IDENTITY or run `phoenix secrets init ENV`"
        )
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PhoenixError(f"{path}: age identity is readable by others; chmod 600 it")
    lines = [line.strip() for line in path.read_text().splitlines()]
    keys = [line for line in lines if line.startswith("AGE-SECRET-KEY-")]
    if not keys:
        raise PhoenixError(f"{path}: no AGE-SECRET-KEY line")
    try:
        return pyrage.x25519.Identity.from_str(keys[0])
    except pyrage.IdentityError as error:
        raise PhoenixError(f"{path}: malformed age identity: {error}") from error


def read_recipients(path: Path) -> list[pyrage.x25519.Recipient]:
    """Returns the age public keys listed in `path` (one per line, # comments allowed)."""
    if not path.exists():
        raise PhoenixError(f"{path}: recipients file not found")
    recipients = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            recipients.append(pyrage.x25519.Recipient.from_str(line))
        except pyrage.RecipientError as error:
            raise PhoenixError(f"{path}:{number}: not an age public key: {error}") from error
    if not recipients:
        raise PhoenixError(f"{path}: no recipients")
    return recipients


def decrypt_text(encrypted: Path, identity: pyrage.x25519.Identity) -> str:
    """Returns the clear text of an age file; raises PhoenixError naming the file."""
    if not encrypted.exists():
        raise PhoenixError(f"{encrypted}: secrets file not found; create it with `phoenix secrets edit`")
    try:
        return pyrage.decrypt(encrypted.read_bytes(), [identity]).decode()
    except pyrage.DecryptError as error:
        raise PhoenixError(f"{encrypted}: cannot decrypt with {identity_path()}: {error}") from error


def decrypt_yaml(encrypted: Path, identity: pyrage.x25519.Identity) -> dict:
    """Returns the YAML mapping inside an age file; raises PhoenixError naming the file."""
    return parse_secrets_yaml(decrypt_text(encrypted, identity), str(encrypted))


def parse_secrets_yaml(text: str, source: str) -> dict:
    """Returns the mapping in decrypted secrets text; raises PhoenixError without echoing values.

    A secret defined twice is refused (strict_yaml), naming its key and lines, never its value.
    """
    try:
        values = strict_yaml.load(text, source)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        # The YAML error text quotes the offending line, which may hold a secret: leave it out.
        raise PhoenixError(f"{source}: invalid YAML at{where or ' an unknown line'}") from None
    except strict_yaml.DuplicateKeys as duplicates:
        raise PhoenixError(str(duplicates)) from None  # without the values it carries
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise PhoenixError(f"{source}: expected a mapping of secret names to values")
    return values


def encrypt_yaml(values_text: str, recipients: list, destination: Path) -> None:
    """Encrypts YAML text to `recipients` into `destination` (armoured), replacing it atomically."""
    ciphertext = pyrage.encrypt(values_text.encode(), recipients, armored=True)
    temporary = destination.with_suffix(".tmp")
    temporary.write_bytes(ciphertext)
    temporary.replace(destination)


def _lookup(values: dict, dotted: str) -> object:
    node: object = values
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# Secrets Phoenix can make itself: random passwords of this many bytes.
RANDOM_SECRET_BYTES = {
    "session_secret": 32,
    "database_passwords": 24,
    "restic_passwords": 32,
    "vault_credentials": 24,
    "replication_passwords": 24,
}


def generate_missing(values: dict, required: list[str], vault_name: str | None) -> list[str]:
    """Fills `values` in place with every required secret Phoenix can generate; returns the keys made.

    Random passwords, and a self-signed certificate for the vault issued to `vault_name`.
    The site's TLS certificate is not generated: a real one comes from a certificate authority.
    """
    made = []
    for dotted in required:
        if _lookup(values, dotted) not in (None, ""):
            continue
        section, _, key = dotted.rpartition(".")
        size = RANDOM_SECRET_BYTES.get(section or key)
        if size is None:
            continue
        target = values.setdefault(section, {}) if section else values
        target[key] = random_source.token_urlsafe(size)
        made.append(dotted)
    wants_vault_tls = "vault_tls_certificate" in required or "vault_tls_private_key" in required
    if (
        wants_vault_tls
        and vault_name
        and not (values.get("vault_tls_certificate") and values.get("vault_tls_private_key"))
    ):
        values["vault_tls_certificate"], values["vault_tls_private_key"] = self_signed_certificate(vault_name)
        made += ["vault_tls_certificate", "vault_tls_private_key"]
    return made


def self_signed_certificate(name: str, days: int = 3650) -> tuple[str, str]:
    """Returns (certificate PEM, private key PEM) of a self-signed P-256 certificate for `name`.

    Backed-up hosts trust exactly this certificate (restic --cacert), so no authority is involved.
    """
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    try:
        alternative = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alternative = x509.DNSName(name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certificate_pem, key_pem


def generated_secrets_stem(environment: Environment) -> str:
    """Names a throwaway environment's generated secrets file: <env> for the sandbox its inventory
    names, <env>@<sandbox> for another (PHOENIX_SANDBOX, CI's parallel workers). Two sandboxes of one
    inventory built at once would otherwise overwrite each other's passwords between converges."""
    if environment.sandbox_name in ("", environment.connection.get("sandbox")):
        return environment.name
    return f"{environment.name}@{environment.sandbox_name}"


def generated_secrets(name: str, required: list[str], vault_name: str | None = None) -> Secrets:
    """Returns the throwaway secrets stored under `name`, generating any not made yet.

    Values already in the file are kept, so every converge of the same sandbox sees the same.
    """
    path = state_root() / "secrets" / f"{name}.yml"
    values = parse_secrets_yaml(path.read_text(), str(path)) if path.exists() else {}
    if generate_missing(values, required, vault_name):
        _write_private_yaml(path, values)
    return Secrets(values, str(path))


def _write_private_yaml(path: Path, values: dict) -> None:
    """Writes `values` as YAML to `path`, which is mode 0600 from its creation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        yaml.safe_dump(values, handle)


def required_secret_keys(environment: Environment) -> list[str]:
    """Returns the secret keys the environment's hosts need, as dotted paths."""
    keys = set()
    for host in environment.hosts.values():
        if "app" in host["roles"]:
            keys.add(f"database_passwords.{host['app']['database']['user']}")
            keys.add("session_secret")
        if "nginx" in host["roles"] and host["site"]["tls"] == "provided" and not environment.throwaway:
            keys.update({"tls_certificate", "tls_private_key"})
    keys.update(backup_plan.secret_keys(environment.hosts))
    keys.update(archive_plan.secret_keys(environment.hosts))
    return sorted(keys)


def vault_certificate_name(environment: Environment) -> str | None:
    """Returns the name the vault's TLS certificate is issued to, or None without a vault."""
    vault = backup_plan.vault_host(environment.hosts)
    if vault is None:
        return None
    return backup_plan.vault_server_name(vault, environment.hosts[vault], environment.connection["type"])


def missing_secret_errors(values: dict, required: list[str], source: str) -> list[str]:
    """Returns one message per required dotted key absent from `values`."""
    errors = []
    for dotted in required:
        if _lookup(values, dotted) in (None, ""):
            errors.append(f"{source}: missing secret '{dotted}'")
    return errors


def load_secrets(environment: Environment) -> Secrets:
    """Returns the secrets of `environment`; raises PhoenixError listing any that are missing."""
    required = required_secret_keys(environment)
    if environment.throwaway:
        return generated_secrets(generated_secrets_stem(environment), required, vault_certificate_name(environment))
    encrypted, _ = secrets_paths(environment.path, environment.name)
    values = decrypt_yaml(encrypted, read_identity(identity_path()))
    errors = missing_secret_errors(values, required, str(encrypted))
    if errors:
        errors.append(f"(`phoenix secrets fill {environment.name}` generates the passwords and the vault certificate)")
        raise PhoenixError("\n".join(errors))
    return Secrets(values, str(encrypted))
