"""Who backs up what and where, the files the backup and vault roles write, and `phoenix status`."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment, pyinfra_hosts
from phoenix.secrets import Secrets
from phoenix.status import evaluate
from roles import backup, vault
from roles.firewall import open_ports

SECRETS = Secrets(
    {
        "database_passwords": {"links": "db-pass"},
        "session_secret": "s",
        "restic_passwords": {"web1": "restic-web1", "db1": "restic-db1"},
        "vault_credentials": {"web1": "login/web1%", "db1": "login-db1"},
        "vault_tls_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "vault_tls_private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    },
    "test secrets",
)


def load_error(path: Path) -> str:
    with pytest.raises(PhoenixError) as caught:
        load_environment(path)
    return str(caught.value)


@pytest.fixture
def hosts(write_inventory) -> dict[str, dict]:
    return {name.split("/")[-1]: data for name, data in pyinfra_hosts(load_environment(write_inventory()), SECRETS)}


def test_the_database_host_backs_up_its_databases_and_files_and_the_web_host_its_files(hosts):
    assert [job["name"] for job in hosts["db1"]["backup_jobs"]] == ["db-links", "files"]
    assert hosts["db1"]["backup_jobs"][0]["database"] == "links"
    web_files = hosts["web1"]["backup_jobs"]
    assert [job["name"] for job in web_files] == ["files"]
    assert web_files[0]["paths"] == ["/etc", "/var/lib/links/uploads"]  # /etc holds the TLS material
    assert hosts["vault1"]["backup_jobs"] == []


def test_an_hourly_database_job_is_one_line_of_yaml(write_inventory, shop_inventory_text):
    text = shop_inventory_text.replace(
        "    roles: [postgres]\n", "    roles: [postgres]\n    backup: {database: {schedule: hourly}}\n"
    )
    environment = load_environment(write_inventory(text))

    hosts = dict(pyinfra_hosts(environment, SECRETS))

    assert hosts["db1"]["backup_jobs"][0]["schedule"] == "hourly"
    assert hosts["db1"]["backup_jobs"][1]["schedule"] == "*-*-* 02:45:00"


def test_backup_config_carries_the_clients_own_vault_login_quoted(hosts):
    config = json.loads(backup.config_text(SimpleNamespace(**hosts["web1"])))

    assert config["repository"] == "rest:https://web1:login%2Fweb1%25@198.51.100.30:8443/web1/"
    assert config["password"] == "restic-web1"
    assert config["cacert"] == "/etc/phoenix/vault.crt"


def test_a_rented_repository_url_is_used_as_given_with_its_credentials_from_the_secrets(
    write_inventory, shop_inventory_text
):
    text = shop_inventory_text.replace(
        "    roles: [postgres]\n", "    roles: [postgres]\n    backup: {repository: 's3:s3.example.com/bucket/db1'}\n"
    )
    secrets = Secrets({**SECRETS._values, "backup_environment": {"db1": {"AWS_ACCESS_KEY_ID": "AKIA"}}}, "test")
    hosts = dict(pyinfra_hosts(load_environment(write_inventory(text)), secrets))

    config = json.loads(backup.config_text(SimpleNamespace(**hosts["db1"])))

    assert config["repository"] == "s3:s3.example.com/bucket/db1"
    assert config["environment"] == {"AWS_ACCESS_KEY_ID": "AKIA"} and config["cacert"] == ""
    assert [client["name"] for client in hosts["vault1"]["vault_clients"]] == ["web1"]


def test_vault_logins_are_sha_hashes_of_each_clients_password(hosts):
    lines = vault.htpasswd(hosts["vault1"]["vault_clients"], SECRETS).splitlines()

    expected = base64.b64encode(hashlib.sha1(b"login/web1%").digest()).decode()
    assert lines[0] == f"web1:{{SHA}}{expected}"
    assert [line.split(":")[0] for line in lines] == ["web1", "db1"]
    assert "login" not in "".join(line.split(":", 1)[1] for line in lines)


def test_vault_config_has_each_repositorys_password_and_the_policy_in_seconds(hosts):
    config = json.loads(vault.config_text(hosts["vault1"]["vault"], hosts["vault1"]["vault_clients"], SECRETS))

    assert config["clients"] == {"web1": "restic-web1", "db1": "restic-db1"}
    assert config["retention"]["keep_within_seconds"] == 7 * 86400
    assert config["retention"]["minimum_verified"] == 3


def test_the_vault_port_is_open_to_all_or_to_the_listed_addresses(write_inventory, shop_inventory_text):
    text = shop_inventory_text.replace(
        "    roles: [vault]\n", "    roles: [vault]\n    vault: {allow_from: [192.0.2.10]}\n"
    )
    default = dict(pyinfra_hosts(load_environment(write_inventory()), SECRETS))
    restricted = dict(pyinfra_hosts(load_environment(write_inventory(text)), SECRETS))

    assert open_ports(SimpleNamespace(**default["vault1"]))["vault"] == {"port": 8443, "sources": []}
    assert open_ports(SimpleNamespace(**restricted["vault1"]))["vault"] == {"port": 8443, "sources": ["192.0.2.10"]}
    assert open_ports(SimpleNamespace(**default["web1"]))["vault"] is None


def test_backup_now_quotes_the_pin_and_refuses_an_unknown_trigger():
    command = backup.now_command("manual", "before 'v2'; rm -rf /")

    quoted_pin = "'before '\"'\"'v2'\"'\"'; rm -rf /'"
    assert command.endswith(f"phoenix-backup run all --trigger manual --pin {quoted_pin} --records")
    with pytest.raises(PhoenixError, match="backup_trigger='nightly': expected one of scheduled, manual, pre-upgrade"):
        backup.now_command("nightly", "")


@pytest.mark.parametrize(
    "change,message",
    [
        (("  vault1:\n    roles: [vault]\n", "  vault1:\n    roles: [vault, postgres]\n"),
         "at 'hosts.vault1.roles': vault with postgres: a vault on a data host is not off-site"),
        (("  vault1:\n    roles: [vault]\n", "  vault1:\n    roles: []\n"),
         "at 'hosts.web1.backup': no host has the vault role: add one, set backup.repository"),
        (("    roles: [vault]\n", "    roles: [vault]\n    vault: {retention: {minimum_verified: 0}}\n"),
         "at 'hosts.vault1.vault.retention.minimum_verified': 0 is less than the minimum of 1"),
        (("    roles: [vault]\n", "    roles: [vault]\n    vault: {retention: {keep_within: 7 days}}\n"),
         "at 'hosts.vault1.vault.retention.keep_within': '7 days' does not match"),
    ],
)  # fmt: skip
def test_backup_settings_that_cannot_work_are_refused_with_their_key(
    write_inventory, shop_inventory_text, change, message
):
    path = write_inventory(shop_inventory_text.replace(*change))

    assert message in load_error(path)


def report(now: str, web1_jobs: dict, check: dict | None) -> dict:
    return {
        "now": now,
        "clients": {"web1": {"jobs": web1_jobs, "last_check": check}, "db1": {"jobs": {}, "last_check": check}},
    }


def test_status_flags_a_job_older_than_its_threshold_and_one_with_no_backup(write_inventory):
    environment = load_environment(write_inventory())
    latest = {"run": "r1", "time": "2026-11-20T02:45:00+00:00", "trigger": "scheduled"}
    check = {"time": "2026-11-16T04:00:00+00:00", "ok": True, "problems": {}}

    fresh, _ = evaluate(environment, report("2026-11-21T04:00:00+00:00", {"files": {"latest": latest}}, check))
    stale, flags = evaluate(environment, report("2026-11-21T05:00:00+00:00", {"files": {"latest": latest}}, check))

    rows = {(row.host, row.job): row for row in fresh}
    assert rows[("web1", "files")].flags == [] and rows[("web1", "files")].age_hours == pytest.approx(25.25)
    assert rows[("db1", "db-links")].flags == ["no complete backup"]
    assert {(row.host, row.job): row for row in stale}[("web1", "files")].flags == ["older than 26h"]
    assert flags == []


def test_status_flags_a_failed_integrity_check(write_inventory):
    environment = load_environment(write_inventory())
    failed = {"time": "2026-11-16T04:00:00+00:00", "ok": False, "message": ["Fatal: pack 1a2b damaged"]}

    _, flags = evaluate(environment, report("2026-11-21T04:00:00+00:00", {}, failed))

    assert flags == [
        "web1: the last check (2026-11-16T04:00:00+00:00) FAILED",
        "db1: the last check (2026-11-16T04:00:00+00:00) FAILED",
    ]
