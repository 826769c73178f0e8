"""A sandbox reached over SSH (connection type sandbox-ssh): its hosts get the same SSH connection data as real
servers, at their containers' addresses, with the sandbox's own key and host keys checked strictly."""

from __future__ import annotations

import pytest
from test_backup_plan import SECRETS

from phoenix import dev, run_flags, sandbox_ssh, sandbox_state
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment, pyinfra_hosts
from phoenix.vault_client import remote_command

ADDRESSES = {"web1": "172.30.0.2", "db1": "172.30.0.3", "vault1": "172.30.0.4"}


@pytest.fixture
def environment(write_inventory, shop_inventory_text):
    """The shop environment as a sandbox-ssh sandbox 'shop-ssh' whose containers are up."""
    text = shop_inventory_text.replace("  type: ssh\n", "  type: sandbox-ssh\n  sandbox: shop-ssh\n")
    hosts = {name: {"container": f"phx-shop-ssh-{name}", "address": address} for name, address in ADDRESSES.items()}
    sandbox_state.write("shop-ssh", {"sandbox": "shop-ssh", "image": "phoenix-base:x", "hosts": hosts})
    return load_environment(write_inventory(text))


def test_each_host_is_reached_over_ssh_at_its_container_with_the_sandboxs_key_and_host_keys(environment):
    public_key = sandbox_ssh.ensure_key("shop-ssh")

    hosts = dict(pyinfra_hosts(environment, SECRETS))

    assert list(hosts) == ["web1", "db1", "vault1"]  # pyinfra names, as with real servers: --limit web1 works
    key, known_hosts = sandbox_ssh.key_file("shop-ssh"), sandbox_ssh.known_hosts_file("shop-ssh")
    assert {name: (data["ssh_hostname"], data["ssh_user"], data["_sudo"]) for name, data in hosts.items()} == {
        name: (address, "alice", True) for name, address in ADDRESSES.items()
    }
    assert hosts["web1"]["ssh_key"] == str(key) and hosts["web1"]["ssh_known_hosts_file"] == str(known_hosts)
    assert hosts["web1"]["ssh_strict_host_key_checking"] == "yes"
    # the admin logs in with the sandbox's key besides their own, once the first converge made them
    assert hosts["db1"]["admins"][0]["ssh_keys"][-1] == public_key
    assert len(hosts["db1"]["admins"][0]["ssh_keys"]) == 2


def test_the_first_login_as_root_uses_no_sudo(environment, monkeypatch):
    sandbox_ssh.ensure_key("shop-ssh")
    flags = {**run_flags.from_command_line(), "ssh_user": "root"}
    monkeypatch.setattr(run_flags, "from_command_line", lambda: flags)

    hosts = dict(pyinfra_hosts(environment, SECRETS))

    # pyinfra puts --data ssh_user=root in place of the inventory's user; a blank box may have no sudo
    assert "_sudo" not in hosts["web1"]


def test_a_sandbox_without_its_key_is_refused_with_the_command_that_makes_it(environment):
    with pytest.raises(PhoenixError, match=r"sandbox 'shop-ssh' has no SSH key .*`phoenix up "):
        pyinfra_hosts(environment, SECRETS)


def test_the_vault_is_asked_over_ssh_as_the_admin_with_the_sandboxs_key_and_host_keys(environment):
    key, known_hosts = sandbox_ssh.key_file("shop-ssh"), sandbox_ssh.known_hosts_file("shop-ssh")

    assert remote_command(environment, "vault1") == [
        "ssh", "-p", "22", "-o", "BatchMode=yes", "-i", str(key),
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "alice@172.30.0.4", "sudo", "-n",
    ]  # fmt: skip
    assert environment.over_ssh and environment.in_sandbox


def test_known_hosts_name_the_address_and_the_inventorys_port_with_each_key_type():
    host_keys = "ssh-ed25519 AAAAC3Nz root@web1\necdsa-sha2-nistp256 AAAAE2Vj root@web1\n"

    assert sandbox_ssh.known_hosts_lines("172.30.0.2", 22, host_keys) == [
        "172.30.0.2 ssh-ed25519 AAAAC3Nz",
        "172.30.0.2 ecdsa-sha2-nistp256 AAAAE2Vj",
    ]
    assert sandbox_ssh.known_hosts_lines("172.30.0.2", 2222, host_keys)[0] == (
        "172.30.0.2,[172.30.0.2]:2222 ssh-ed25519 AAAAC3Nz"
    )


def test_removing_the_sandbox_forgets_its_key(environment):
    sandbox_ssh.ensure_key("shop-ssh")

    sandbox_state.remove("shop-ssh")

    assert not sandbox_ssh.is_prepared("shop-ssh")


def test_phoenix_up_logs_into_new_containers_as_root_and_refuses_a_mix_of_new_and_deployed(environment):
    assert dev._first_login(environment, ["web1", "db1", "vault1"]) == {"ssh_user": "root"}
    assert dev._first_login(environment, []) == {}
    with pytest.raises(PhoenixError, match=r"web1 started blank .* db1, vault1 already deployed .*`phoenix down "):
        dev._first_login(environment, ["web1"])


def test_enabling_ssh_records_the_ports_known_hosts_are_written_for(environment):
    sandbox_ssh.enable("shop-ssh", {"web1": 2222})

    assert sandbox_ssh.is_prepared("shop-ssh")
    assert sandbox_ssh._recorded_ports("shop-ssh") == {"web1": 2222}
