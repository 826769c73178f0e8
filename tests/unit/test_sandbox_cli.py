"""`phoenix sandbox up NAME`: which hosts it starts when it is not told."""

from __future__ import annotations

from phoenix import cli, sandbox_state


def state(*hosts: str) -> dict:
    """A sandbox's recorded state (as `phoenix sandbox up` writes it) with `hosts`."""
    recorded = {host: {"container": f"phx-apps-{host}", "address": "172.30.0.2"} for host in hosts}
    return {"sandbox": "apps", "image": "phoenix-base:x", "hosts": recorded}


def test_without_hosts_or_inventory_an_existing_sandbox_keeps_its_own_hosts(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOENIX_STATE_DIR", str(tmp_path))
    sandbox_state.write("apps", state("kinto1", "vault1"))

    assert cli.sandbox_hosts_to_start("apps", None, None) == ["kinto1", "vault1"]


def test_a_new_sandbox_gets_the_sandbox_inventorys_hosts(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOENIX_STATE_DIR", str(tmp_path))
    assert cli.sandbox_hosts_to_start("fresh", None, None) == ["web1", "web2", "db1", "vault1"]


def test_hosts_and_inventory_given_win_over_what_the_sandbox_has(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOENIX_STATE_DIR", str(tmp_path))
    sandbox_state.write("apps", state("kinto1"))

    assert cli.sandbox_hosts_to_start("apps", "web1,db1", None) == ["web1", "db1"]
    assert cli.sandbox_hosts_to_start("apps", None, "inventories/dev.yml") == cli._host_names("inventories/dev.yml")
