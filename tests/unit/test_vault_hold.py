"""The vault's hold (upgrade.py's pause of retention): scheduled retention skips a held client."""

from __future__ import annotations

import pytest

from phoenix.remote import vault


@pytest.fixture
def held_vault(vault_config):
    return vault.Vault(vault_config("web1", "db1"))


def test_a_hold_is_kept_until_released_and_logged_both_ways(held_vault, capsys):
    assert vault.main_with(held_vault, ["hold", "--client", "web1", "--reason", "upgrade of web1"]) == 0
    assert held_vault.state("web1")["hold"]["reason"] == "upgrade of web1"
    assert vault.main_with(held_vault, ["release", "--client", "web1"]) == 0
    assert "hold" not in held_vault.state("web1")
    log = (held_vault.data_dir / "log" / "retention.log").read_text()
    assert "[web1] on hold: upgrade of web1" in log and "[web1] hold released (upgrade of web1)" in log


def test_scheduled_retention_skips_a_held_client_without_opening_its_repository(held_vault, monkeypatch):
    vault.main_with(held_vault, ["hold", "--client", "web1", "--reason", "upgrade of web1"])
    opened = []
    monkeypatch.setattr(vault.Vault, "runs", lambda self, client: opened.append(client) or [])
    assert vault.main_with(held_vault, ["retain", "--scheduled"]) == 0
    assert opened == ["db1"]
    assert "[web1] on hold since" in (held_vault.data_dir / "log" / "retention.log").read_text()


def test_retention_started_by_hand_covers_a_held_client(held_vault, monkeypatch):
    vault.main_with(held_vault, ["hold", "--client", "web1", "--reason", "upgrade of web1"])
    opened = []
    monkeypatch.setattr(vault.Vault, "runs", lambda self, client: opened.append(client) or [])
    assert vault.main_with(held_vault, ["retain", "--client", "web1"]) == 0
    assert opened == ["web1"]


def test_a_hold_names_a_known_client(held_vault, capsys):
    assert vault.main_with(held_vault, ["hold", "--client", "web9", "--reason", "x"]) == 1
    assert "no client 'web9'" in capsys.readouterr().err
