"""backup.py on one host: the vault pins what was asked, and a full vault disk is said with its free space."""

from __future__ import annotations

import json

import pytest

from phoenix import backup_now, vault_client
from phoenix.errors import PhoenixError

COMMAND = "phoenix-backup run all --trigger manual --pin 'before 2.0' --records"


def host_shell(result: bool, statuses: dict):
    """A data host whose `phoenix-backup run` succeeds or not and ends its output with these runs' records."""

    def shell(command: str) -> tuple[bool, str, str]:
        assert command == COMMAND
        report = "[files] done: snapshot 3e64c922 + manifest 51dea9c7\n" + json.dumps(statuses) + "\n"
        return result, report, "" if result else "phoenix-backup: failed"

    return shell


@pytest.fixture
def vault_calls(monkeypatch):
    calls = []

    def pin_run(environment, client, run, reason, by):
        calls.append(("pin", client, run, reason, by))
        return {"client": client, "run": run, "pin": reason, "by": by}

    def ask_vault(environment, *arguments, timeout=120):
        calls.append(arguments)
        return {"path": "/var/lib/phoenix-vault", "free_bytes": 12 * 1024, "total_bytes": 64 * 1024 * 1024}

    monkeypatch.setattr(backup_now, "pin_run", pin_run)
    monkeypatch.setattr(vault_client, "ask_vault", ask_vault)
    return calls


def test_each_run_made_with_a_pin_is_pinned_by_the_vault_with_who(vault_calls):
    statuses = {
        "db-links": {"result": "ok", "run": "r1", "pin": "before 2.0"},
        "files": {"result": "ok", "run": "r2", "pin": "before 2.0"},
    }
    lines = backup_now.back_up_now(host_shell(True, statuses), COMMAND, None, "web1", "before 2.0", "ana@laptop")

    assert vault_calls == [
        ("pin", "web1", "r1", "before 2.0", "ana@laptop"),
        ("pin", "web1", "r2", "before 2.0", "ana@laptop"),
    ]
    assert lines == [
        "[files] done: snapshot 3e64c922 + manifest 51dea9c7",
        "web1/db-links: run r1 pinned on the vault: before 2.0",
        "web1/files: run r2 pinned on the vault: before 2.0",
    ]


def test_a_full_vault_disk_is_reported_with_its_free_space_and_the_good_run_still_pinned(vault_calls):
    disk_full = "vault disk full: the vault refused to store this run's data (restic backup failed: 403 Forbidden)"
    statuses = {
        "db-links": {"result": "ok", "run": "r1", "pin": "before 2.0"},
        "files": {"result": "failed", "error": disk_full},
    }
    with pytest.raises(PhoenixError) as raised:
        backup_now.back_up_now(host_shell(False, statuses), COMMAND, None, "web1", "before 2.0", "ana@laptop")

    message = str(raised.value)
    assert f"web1/files: {disk_full}" in message
    assert message.endswith("vault disk full: 12.0 KiB free of 64.0 MiB on the vault's /var/lib/phoenix-vault")
    assert ("pin", "web1", "r1", "before 2.0", "ana@laptop") in vault_calls


def test_without_a_pin_nothing_is_asked_of_the_vault(vault_calls):
    statuses = {"files": {"result": "ok", "run": "r2", "pin": ""}}
    assert backup_now.back_up_now(host_shell(True, statuses), COMMAND, None, "web1", "", "ana@laptop") == [
        "[files] done: snapshot 3e64c922 + manifest 51dea9c7"
    ]
    assert vault_calls == []
