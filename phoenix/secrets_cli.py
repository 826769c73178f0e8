"""`phoenix secrets init ENV` and `phoenix secrets edit ENV`: the operator's side of age secrets.

init makes the operator's age identity (once), adds its public key to the environment's
recipients and creates the encrypted file from a template of the keys the environment needs.
edit decrypts into a private temporary file, runs the editor, checks the YAML and re-encrypts.
No secret value is ever printed.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import yaml

from phoenix.errors import PhoenixError
from phoenix.inventory import Environment, load_environment
from phoenix.secrets import (
    decrypt_text,
    encrypt_yaml,
    generate_missing,
    identity_path,
    missing_secret_errors,
    parse_secrets_yaml,
    read_identity,
    read_recipients,
    required_secret_keys,
    secrets_paths,
    vault_certificate_name,
)

SECRET_COMMENTS = {
    "session_secret": "Signs the app's session cookies: a long random string (`openssl rand -base64 32`).",
    "tls_certificate": "The site's certificate chain in PEM, the site's certificate first, pasted indented:",
    "tls_private_key": "The certificate's private key in PEM, pasted indented the same way.",
    "vault_tls_certificate": "The vault's certificate (PEM); `phoenix secrets fill` makes a self-signed one.",
    "vault_tls_private_key": "The vault certificate's private key (PEM); made by `phoenix secrets fill`.",
}


SECTION_COMMENTS = {
    "database_passwords": "Password of each database role the apps log in as: long and random.",
    "restic_passwords": "Each backed-up host's restic repository password: lose it and its backups are unreadable.",
    "vault_credentials": "Each backed-up host's login on the vault.",
}
FILL_HINT = "`phoenix secrets fill` generates every password and the vault certificate."


def run(arguments: argparse.Namespace) -> int:
    """Given the parsed `phoenix secrets ACTION ENV` arguments, runs the action; returns the exit code."""
    environment_file = Path("inventories") / f"{arguments.environment}.yml"
    if not environment_file.is_file():
        raise PhoenixError(f"{environment_file}: no such environment file (run phoenix from the repository root)")
    environment = load_environment(environment_file)
    if arguments.action == "init":
        return initialise(environment)
    if arguments.action == "fill":
        return fill(environment)
    return edit(environment)


def initialise(environment: Environment) -> int:
    """Given an environment, makes the identity, recipient entry and encrypted file that are missing; returns 0."""
    encrypted, recipients_file = secrets_paths(environment.path, environment.name)
    identity_file = identity_path()
    if identity_file.exists():
        identity = read_identity(identity_file)
        print(f"using your age identity {identity_file}")
    else:
        identity = pyrage.x25519.Identity.generate()
        write_identity(identity, identity_file)
        print(f"created your age identity {identity_file} (mode 0600; back it up, it is the only way in)")
    public_key = str(identity.to_public())
    if add_recipient(recipients_file, public_key, f"{getpass.getuser()}@{socket.gethostname()}"):
        print(f"added your public key to {recipients_file}")
    else:
        print(f"{recipients_file} already lists your public key")
    if environment.throwaway:
        print(f"{environment.name} is a throwaway environment: its secrets are generated, {encrypted} is not used")
    elif encrypted.exists() and _opens_with(encrypted, identity):
        print(f"{encrypted} exists and opens with your identity")
    elif encrypted.exists():
        print(f"{encrypted} exists: a current recipient must run `phoenix secrets edit {environment.name}` and save")
        print("  once for your key to open it (edit re-encrypts to every listed recipient)")
    else:
        encrypt_yaml(secrets_template(environment), read_recipients(recipients_file), encrypted)
        print(f"created {encrypted} with empty values: fill them in with `phoenix secrets edit {environment.name}`")
    print(f"your public key: {public_key}")
    return 0


def fill(environment: Environment) -> int:
    """Generates every missing secret Phoenix can make (passwords, vault certificate); returns 0.

    Only the names of what was generated are printed. The file is rewritten from its parsed
    values, so comments in it are not kept.
    """
    encrypted, recipients_file = secrets_paths(environment.path, environment.name)
    if environment.throwaway:
        print(f"{environment.name} is a throwaway environment: its secrets are generated when it is deployed")
        return 0
    if not encrypted.exists():
        raise PhoenixError(f"{encrypted}: not found; run `phoenix secrets init {environment.name}` first")
    recipients = read_recipients(recipients_file)
    values = parse_secrets_yaml(decrypt_text(encrypted, read_identity(identity_path())), str(encrypted))
    made = generate_missing(values, required_secret_keys(environment), vault_certificate_name(environment))
    if not made:
        print(f"{encrypted}: nothing to generate")
        return 0
    encrypt_yaml(yaml.safe_dump(values, sort_keys=False, default_flow_style=False), recipients, encrypted)
    print(f"generated into {encrypted}: {', '.join(made)}")
    return 0


def write_identity(identity: pyrage.x25519.Identity, path: Path) -> None:
    """Writes `identity` to a new file `path` (mode 0600, parent 0700) in age-keygen's format."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {identity.to_public()}\n{identity}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def add_recipient(recipients_file: Path, public_key: str, label: str) -> bool:
    """Given a recipients file, appends `public_key` under a `# label` line; returns False when already listed."""
    text = recipients_file.read_text() if recipients_file.exists() else ""
    listed = {line.split("#", 1)[0].strip() for line in text.splitlines()}
    if public_key in listed:
        return False
    recipients_file.parent.mkdir(parents=True, exist_ok=True)
    separator = "\n" if text and not text.endswith("\n") else ""
    recipients_file.write_text(f"{text}{separator}# {label}\n{public_key}\n")
    return True


def secrets_template(environment: Environment) -> str:
    """Given an environment, returns commented YAML with an empty value for every secret it needs."""
    required = required_secret_keys(environment)
    lines = [
        f"# Secrets of environment {environment.name}. `phoenix secrets edit {environment.name}` opens this",
        "# decrypted in your editor and re-encrypts it on save. Every key below is required.",
        f"# {FILL_HINT}",
    ]
    sections: dict[str, list[str]] = {}
    for key in required:
        section, _, name = key.rpartition(".")
        if section:
            sections.setdefault(section, []).append(name)
    for section, names in sections.items():
        lines += ["", f"# {SECTION_COMMENTS.get(section, 'Required.')}", f"{section}:"]
        lines += [f'  {name}: ""' for name in names]
    for key in (key for key in required if "." not in key):
        lines += ["", f"# {SECRET_COMMENTS.get(key, 'Required.')}"]
        if key == "tls_certificate":
            lines += ["#   tls_certificate: |", "#     -----BEGIN CERTIFICATE-----", "#     ..."]
        lines.append(f"{key}: |" if "tls_" in key else f'{key}: ""')
    return "\n".join(lines) + "\n"


def edit(environment: Environment) -> int:
    """Given an environment, lets the operator edit its decrypted secrets; returns 0, or 2 when nothing was saved.

    Raises PhoenixError when the identity, recipients or editor fail; the encrypted file is then unchanged.
    """
    encrypted, recipients_file = secrets_paths(environment.path, environment.name)
    recipients = read_recipients(recipients_file)
    if encrypted.exists():
        original = decrypt_text(encrypted, read_identity(identity_path()))
    else:
        original = secrets_template(environment)
        print(f"{encrypted} does not exist yet: starting from a template")
    workspace = Path(tempfile.mkdtemp(prefix="phoenix-secrets-", dir=_private_scratch_root()))
    try:
        clear_file = workspace / f"{environment.name}.yml"
        descriptor = os.open(clear_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(original)
        edited = _edit_until_valid(clear_file, source=f"{encrypted} (as edited)")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    if edited is None:
        print(f"{encrypted} was not changed", file=sys.stderr)
        return 2
    unchanged_recipients = encrypted.exists() and encrypted_recipient_count(encrypted.read_bytes()) == len(recipients)
    if edited == original and unchanged_recipients:
        print(f"no change: {encrypted} left as it was")
        return 0
    values = parse_secrets_yaml(edited, str(encrypted))
    for problem in missing_secret_errors(values, required_secret_keys(environment), str(encrypted)):
        print(f"warning: {problem}", file=sys.stderr)
    encrypt_yaml(edited, recipients, encrypted)
    print(f"saved {encrypted}, encrypted to the {len(recipients)} key(s) in {recipients_file}")
    return 0


def encrypted_recipient_count(armoured: bytes) -> int:
    """Given an armoured age file, returns how many X25519 recipients its header has (0 when unreadable).

    age does not say who the recipients are, only how many; a changed count means the
    recipients file changed since the last save and the file must be re-encrypted.
    """
    body = b"".join(line for line in armoured.splitlines() if line and not line.startswith(b"-----"))
    try:
        header = base64.b64decode(body).split(b"\n---", 1)[0]
    except ValueError:
        return 0
    return sum(1 for line in header.split(b"\n") if line.startswith(b"-> X25519 "))


def editor_command() -> list[str]:
    """Returns the operator's editor command: $VISUAL, $EDITOR, sensible-editor, or vi."""
    configured = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if configured:
        return shlex.split(configured)
    return ["sensible-editor" if shutil.which("sensible-editor") else "vi"]


def _opens_with(encrypted: Path, identity: pyrage.x25519.Identity) -> bool:
    try:
        pyrage.decrypt(encrypted.read_bytes(), [identity])
    except pyrage.DecryptError:
        return False
    return True


def _private_scratch_root() -> str | None:
    # /dev/shm is memory-backed: the clear text never reaches a disk
    shared_memory = Path("/dev/shm")
    return str(shared_memory) if shared_memory.is_dir() and os.access(shared_memory, os.W_OK) else None


def _edit_until_valid(clear_file: Path, source: str) -> str | None:
    """Runs the editor on `clear_file` until its YAML is valid; returns the text, or None when given up."""
    while True:
        command = [*editor_command(), str(clear_file)]
        try:
            result = subprocess.run(command, check=False)
        except FileNotFoundError as error:
            raise PhoenixError(f"editor {command[0]} not found; set VISUAL or EDITOR") from error
        if result.returncode != 0:
            raise PhoenixError(f"editor {command[0]} exited with status {result.returncode}; nothing was saved")
        text = clear_file.read_text()
        try:
            parse_secrets_yaml(text, source)
            return text
        except PhoenixError as error:
            print(f"phoenix: {error}", file=sys.stderr)
        if not (sys.stdin.isatty() and _ask_yes("edit again? [Y/n] ")):
            return None


def _ask_yes(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")
