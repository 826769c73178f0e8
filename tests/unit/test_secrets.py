"""Secrets: age encryption to the environment's recipients, never shown, and `phoenix secrets init/edit`."""

from __future__ import annotations

import dataclasses
import io
import json
import stat
import sys
from pathlib import Path

import pyrage
import pytest
from cryptography import x509

from phoenix.cli import main
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from phoenix.secrets import (
    Secrets,
    decrypt_yaml,
    encrypt_yaml,
    identity_path,
    load_secrets,
    read_identity,
    secrets_paths,
)
from phoenix.secrets_cli import add_recipient, write_identity

COMPLETE_SECRETS = """\
# filled in by the operator
database_passwords:
  links: correct-horse
session_secret: battery-staple
tls_certificate: |
  -----BEGIN CERTIFICATE-----
  MIIBexample
  -----END CERTIFICATE-----
tls_private_key: |
  -----BEGIN PRIVATE KEY-----
  MIIEexample
  -----END PRIVATE KEY-----
restic_passwords: {web1: r1, db1: r2}
replication_passwords: {db1: a1}
vault_credentials: {web1: v1, db1: v2}
vault_tls_certificate: |
  -----BEGIN CERTIFICATE-----
  MIIBvault
  -----END CERTIFICATE-----
vault_tls_private_key: |
  -----BEGIN PRIVATE KEY-----
  MIIEvault
  -----END PRIVATE KEY-----
"""

# An editor that records how it was called, then writes the next of the texts in $EDITOR_TEXTS.
EDITOR_SCRIPT = """\
import json, os, sys
from pathlib import Path
target = Path(sys.argv[1])
log = Path(os.environ["EDITOR_LOG"])
calls = json.loads(log.read_text()) if log.exists() else []
calls.append({
    "path": str(target),
    "file_mode": target.stat().st_mode & 0o777,
    "directory_mode": target.parent.stat().st_mode & 0o777,
    "text": target.read_text(),
})
log.write_text(json.dumps(calls))
texts = json.loads(os.environ["EDITOR_TEXTS"])
target.write_text(texts[min(len(calls), len(texts)) - 1])
"""


def operator_identity() -> pyrage.x25519.Identity:
    """Makes an identity at PHOENIX_AGE_IDENTITY (set per test by conftest) and returns it."""
    identity = pyrage.x25519.Identity.generate()
    write_identity(identity, identity_path())
    return identity


def write_encrypted(path: Path, text: str, *identities: pyrage.x25519.Identity) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    encrypt_yaml(text, [identity.to_public() for identity in identities], path)
    return path


@pytest.fixture
def repository(tmp_path, write_inventory, monkeypatch) -> Path:
    """A copy of the repository layout with inventories/shop.yml, as the current directory."""
    write_inventory()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def editor(tmp_path, monkeypatch):
    """Returns a function that sets $EDITOR to write the given texts in turn; it returns the call log's path."""
    script = tmp_path / "editor.py"
    script.write_text(EDITOR_SCRIPT)
    log = tmp_path / "editor-calls.json"
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.setenv("EDITOR_LOG", str(log))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal

    def will_write(*texts: str) -> Path:
        monkeypatch.setenv("EDITOR_TEXTS", json.dumps(list(texts)))
        return log

    return will_write


def test_encrypted_secrets_round_trip_with_the_operators_identity(tmp_path):
    identity = operator_identity()
    encrypted = write_encrypted(tmp_path / "shop.yml.age", "session_secret: battery-staple\n", identity)

    assert encrypted.read_text().startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    assert "battery-staple" not in encrypted.read_text()
    assert decrypt_yaml(encrypted, read_identity(identity_path())) == {"session_secret": "battery-staple"}


def test_decrypting_with_another_identity_names_the_file(tmp_path):
    encrypted = write_encrypted(tmp_path / "shop.yml.age", "a: 1\n", pyrage.x25519.Identity.generate())

    with pytest.raises(PhoenixError, match=f"^{encrypted}: cannot decrypt with {identity_path()}"):
        decrypt_yaml(encrypted, operator_identity())


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_identity_readable_by_group_or_others_is_refused(mode):
    operator_identity()
    identity_path().chmod(mode)

    with pytest.raises(PhoenixError, match="readable by others; chmod 600"):
        read_identity(identity_path())


def test_missing_required_secrets_are_all_listed_with_their_keys(write_inventory):
    environment = load_environment(write_inventory())
    encrypted, _ = secrets_paths(environment.path, "shop")
    write_encrypted(
        encrypted, 'database_passwords:\n  links: ""\nsession_secret: battery-staple\n', operator_identity()
    )

    with pytest.raises(PhoenixError) as caught:
        load_secrets(environment)

    assert str(caught.value).splitlines() == [
        f"{encrypted}: missing secret 'database_passwords.links'",
        f"{encrypted}: missing secret 'replication_passwords.db1'",
        f"{encrypted}: missing secret 'restic_passwords.db1'",
        f"{encrypted}: missing secret 'restic_passwords.web1'",
        f"{encrypted}: missing secret 'tls_certificate'",
        f"{encrypted}: missing secret 'tls_private_key'",
        f"{encrypted}: missing secret 'vault_credentials.db1'",
        f"{encrypted}: missing secret 'vault_credentials.web1'",
        f"{encrypted}: missing secret 'vault_tls_certificate'",
        f"{encrypted}: missing secret 'vault_tls_private_key'",
        "(`phoenix secrets fill shop` generates the passwords and the vault certificate)",
    ]


def test_complete_secrets_load_from_the_encrypted_file(write_inventory):
    environment = load_environment(write_inventory())
    encrypted, _ = secrets_paths(environment.path, "shop")
    write_encrypted(encrypted, COMPLETE_SECRETS, operator_identity())

    secrets = load_secrets(environment)

    assert secrets.database_password("links") == "correct-horse"
    assert secrets.get("tls_private_key").startswith("-----BEGIN PRIVATE KEY-----\n")


def test_printed_secrets_never_show_a_value():
    secrets = Secrets({"database_passwords": {"links": "hunter2"}, "session_secret": "battery-staple"}, "shop.yml.age")

    for shown in (repr(secrets), str(secrets), f"{secrets}", repr([secrets]), repr({"secrets": secrets})):
        assert "hunter2" not in shown and "battery-staple" not in shown
    assert "session_secret" in str(secrets)


def test_invalid_yaml_in_the_encrypted_file_is_reported_without_its_line(tmp_path):
    encrypted = write_encrypted(
        tmp_path / "shop.yml.age", "database_passwords:\n  links: hunter2-very-secret: x\n", operator_identity()
    )

    with pytest.raises(PhoenixError) as caught:
        decrypt_yaml(encrypted, read_identity(identity_path()))

    assert str(caught.value) == f"{encrypted}: invalid YAML at line 2"
    # the YAML parser's own message quotes the line: it must not be chained into a traceback either
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_throwaway_secrets_are_generated_once_and_kept_private(write_inventory, tmp_path):
    path = write_inventory(
        "environment: {name: play, throwaway: true}\nconnection: {type: docker}\nhosts:\n"
        "  web1: {roles: [nginx, app, postgres]}\n"
        "  web2: {roles: [app], app: {database: {host: web1, user: shop}}}\n"
        "  vault1: {roles: [vault]}\n",
        name="play",
    )
    environment = load_environment(path)

    first = load_secrets(environment)
    second = load_secrets(environment)

    for user in ("links", "shop"):
        assert len(first.database_password(user)) >= 24
        assert first.database_password(user) == second.database_password(user)
    assert first.get("session_secret") == second.get("session_secret")
    for host in ("web1", "web2"):
        assert len(first.get(f"restic_passwords.{host}")) >= 32
        assert first.get(f"vault_credentials.{host}") == second.get(f"vault_credentials.{host}")
    certificate = x509.load_pem_x509_certificate(first.get("vault_tls_certificate").encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["vault1"]
    assert first.get("vault_tls_certificate") == second.get("vault_tls_certificate")
    generated = tmp_path / "state" / "secrets" / "play.yml"
    assert first.source == str(generated)
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600


def test_two_sandboxes_of_one_throwaway_inventory_keep_their_own_secrets(write_inventory, tmp_path):
    """CI's parallel workers each build a sandbox of inventories/sandbox.yml at once: one worker's first
    converge must not overwrite the passwords another worker's hosts already run with."""
    path = write_inventory(
        "environment: {name: play, throwaway: true}\nconnection: {type: docker, sandbox: play}\nhosts:\n"
        "  web1: {roles: [nginx, app, postgres]}\n  vault1: {roles: [vault]}\n",
        name="play",
    )
    own = load_environment(path)
    first_worker = dataclasses.replace(own, sandbox_name="ci-gw1")
    second_worker = dataclasses.replace(own, sandbox_name="ci-gw2")

    sandboxes = (own, first_worker, second_worker)
    built = [load_secrets(environment).get("restic_passwords.web1") for environment in sandboxes]
    converged_again = [load_secrets(environment).get("restic_passwords.web1") for environment in sandboxes]

    assert len(set(built)) == 3
    assert converged_again == built
    assert load_secrets(own).source == str(tmp_path / "state" / "secrets" / "play.yml")  # the inventory's own sandbox
    assert load_secrets(first_worker).source == str(tmp_path / "state" / "secrets" / "play@ci-gw1.yml")


def test_secrets_init_makes_identity_recipient_and_template(repository, capsys):
    assert main(["secrets", "init", "shop"]) == 0

    output = capsys.readouterr()
    identity = read_identity(identity_path())
    public_key = str(identity.to_public())
    encrypted, recipients = secrets_paths(repository / "inventories" / "shop.yml", "shop")
    assert stat.S_IMODE(identity_path().stat().st_mode) == 0o600
    assert stat.S_IMODE(identity_path().parent.stat().st_mode) == 0o700
    assert identity_path().read_text().splitlines()[1] == f"# public key: {public_key}"
    assert recipients.read_text().splitlines()[1] == public_key
    assert recipients.read_text().startswith("# ")
    assert decrypt_yaml(encrypted, identity) == {
        "database_passwords": {"links": ""},
        "replication_passwords": {"db1": ""},
        "restic_passwords": {"db1": "", "web1": ""},
        "vault_credentials": {"db1": "", "web1": ""},
        "session_secret": "",
        "tls_certificate": "",
        "tls_private_key": "",
        "vault_tls_certificate": "",
        "vault_tls_private_key": "",
    }
    assert f"your public key: {public_key}" in output.out
    assert "AGE-SECRET-KEY" not in output.out + output.err


def test_secrets_init_twice_changes_nothing(repository):
    main(["secrets", "init", "shop"])
    encrypted, recipients = secrets_paths(repository / "inventories" / "shop.yml", "shop")
    before = (identity_path().read_bytes(), recipients.read_bytes(), encrypted.read_bytes())

    assert main(["secrets", "init", "shop"]) == 0

    assert (identity_path().read_bytes(), recipients.read_bytes(), encrypted.read_bytes()) == before


def test_secrets_fill_generates_passwords_and_the_vault_certificate_but_never_prints_them(repository, capsys):
    main(["secrets", "init", "shop"])
    encrypted, _ = secrets_paths(repository / "inventories" / "shop.yml", "shop")

    assert main(["secrets", "fill", "shop"]) == 0

    output = capsys.readouterr().out
    values = decrypt_yaml(encrypted, read_identity(identity_path()))
    assert len(values["restic_passwords"]["web1"]) >= 32 and len(values["vault_credentials"]["db1"]) >= 24
    assert len(values["database_passwords"]["links"]) >= 24 and values["session_secret"]
    certificate = x509.load_pem_x509_certificate(values["vault_tls_certificate"].encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(address) for address in names.get_values_for_type(x509.IPAddress)] == ["198.51.100.30"]
    assert values["tls_certificate"] == ""  # the site's certificate comes from a certificate authority
    assert "restic_passwords.web1" in output
    assert values["restic_passwords"]["web1"] not in output and "PRIVATE KEY" not in output
    before = encrypted.read_bytes()
    assert main(["secrets", "fill", "shop"]) == 0
    assert encrypted.read_bytes() == before and "nothing to generate" in capsys.readouterr().out


def test_secrets_init_of_a_throwaway_environment_makes_no_secrets_file(tmp_path, write_inventory, monkeypatch):
    write_inventory(
        "environment: {name: play, throwaway: true}\nconnection: {type: docker}\n"
        "hosts:\n  web1: {roles: [app, postgres]}\n  vault1: {roles: [vault]}\n",
        "play",
    )
    monkeypatch.chdir(tmp_path)

    assert main(["secrets", "init", "play"]) == 0

    encrypted, recipients = secrets_paths(tmp_path / "inventories" / "play.yml", "play")
    assert recipients.exists() and not encrypted.exists()


def test_secrets_command_for_an_unknown_environment_fails_clearly(repository, capsys):
    assert main(["secrets", "init", "stage"]) == 2

    assert "inventories/stage.yml: no such environment file" in capsys.readouterr().err
    assert not identity_path().exists()


def test_secrets_edit_saves_the_edited_secrets_encrypted(repository, editor, capsys):
    main(["secrets", "init", "shop"])
    calls = editor(COMPLETE_SECRETS)

    assert main(["secrets", "edit", "shop"]) == 0

    environment = load_environment("inventories/shop.yml")
    secrets = load_secrets(environment)
    assert secrets.database_password("links") == "correct-horse"
    assert secrets.get("session_secret") == "battery-staple"
    encrypted, _ = secrets_paths(environment.path, "shop")
    assert "correct-horse" not in encrypted.read_text()
    output = capsys.readouterr()
    assert "correct-horse" not in output.out + output.err
    [call] = json.loads(calls.read_text())
    assert call["text"].startswith("# Secrets of environment shop.")
    assert (call["file_mode"], call["directory_mode"]) == (0o600, 0o700)
    assert not Path(call["path"]).parent.exists()


def test_secrets_edit_with_invalid_yaml_leaves_the_encrypted_file_unchanged(repository, editor, capsys):
    main(["secrets", "init", "shop"])
    encrypted, _ = secrets_paths(repository / "inventories" / "shop.yml", "shop")
    before = encrypted.read_bytes()
    calls = editor("database_passwords: [unclosed\nsession_secret: hunter2\n")

    assert main(["secrets", "edit", "shop"]) == 2

    assert encrypted.read_bytes() == before
    assert len(json.loads(calls.read_text())) == 1
    errors = capsys.readouterr().err
    assert "invalid YAML at line 2" in errors
    assert "hunter2" not in errors
    assert not Path(json.loads(calls.read_text())[0]["path"]).parent.exists()


def test_secrets_edit_on_a_terminal_offers_to_edit_invalid_yaml_again(repository, editor, monkeypatch):
    main(["secrets", "init", "shop"])
    calls = editor("session_secret: [unclosed\n", COMPLETE_SECRETS)
    monkeypatch.setattr(sys, "stdin", type("Terminal", (io.StringIO,), {"isatty": lambda self: True})())
    questions = []
    monkeypatch.setattr("builtins.input", lambda question: questions.append(question) or "")

    assert main(["secrets", "edit", "shop"]) == 0

    assert questions == ["edit again? [Y/n] "]
    second_call = json.loads(calls.read_text())[1]
    assert second_call["text"] == "session_secret: [unclosed\n"  # the operator's own text, to fix
    assert load_secrets(load_environment("inventories/shop.yml")).get("session_secret") == "battery-staple"


def test_secrets_edit_without_a_change_leaves_the_file_alone(repository, editor, capsys):
    main(["secrets", "init", "shop"])
    editor(COMPLETE_SECRETS)  # every call writes the same text: the second edit changes nothing
    main(["secrets", "edit", "shop"])
    encrypted, _ = secrets_paths(repository / "inventories" / "shop.yml", "shop")
    before = encrypted.read_bytes()
    capsys.readouterr()

    assert main(["secrets", "edit", "shop"]) == 0

    assert encrypted.read_bytes() == before
    assert "no change" in capsys.readouterr().out


def test_secrets_edit_reencrypts_for_a_recipient_added_since_the_last_save(repository, monkeypatch):
    main(["secrets", "init", "shop"])
    encrypted, recipients = secrets_paths(repository / "inventories" / "shop.yml", "shop")
    colleague = pyrage.x25519.Identity.generate()
    add_recipient(recipients, str(colleague.to_public()), "bob@laptop")
    with pytest.raises(PhoenixError):
        decrypt_yaml(encrypted, colleague)
    original = decrypt_yaml(encrypted, read_identity(identity_path()))
    monkeypatch.setenv("EDITOR", "true")  # leaves the text as it was

    assert main(["secrets", "edit", "shop"]) == 0

    assert decrypt_yaml(encrypted, colleague) == original


def test_a_secret_defined_twice_is_refused_with_both_lines_and_without_its_values(tmp_path):
    encrypted = write_encrypted(
        tmp_path / "shop.yml.age",
        "database_passwords:\n  links: hunter2-first\nsession_secret: s\n"
        "database_passwords:\n  links: hunter2-second\n",
        operator_identity(),
    )

    with pytest.raises(PhoenixError) as caught:
        decrypt_yaml(encrypted, read_identity(identity_path()))

    assert str(caught.value) == f"{encrypted}: at 'database_passwords': defined twice (lines 1 and 4)"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
