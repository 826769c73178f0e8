"""`--limit` with the inventory's short host names, and a --limit that matches no host refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from repository_pyinfra import run_pyinfra

from phoenix import host_limit

REPOSITORY = Path(__file__).resolve().parents[2]
SANDBOX_NAMES = {"web1": "@sandbox/phx-sandbox-web1", "db1": "@sandbox/phx-sandbox-db1"}
# A throwaway environment over SSH: loading it needs no sandbox, no age identity and no server.
INVENTORY = """\
environment: {name: shop, throwaway: true}
defaults:
  ssh: {user: alice}
  admins:
    - name: alice
      ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPhoenixUnitTestKeyNotForRealUse000000000 alice@laptop"]
hosts:
  web1:
    roles: [nginx, app, postgres]
    ssh: {host: 192.0.2.10}
  vault1:
    roles: [vault]
    ssh: {host: 192.0.2.20}
"""


def run_on_inventory(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Runs pyinfra on INVENTORY (written to tmp_path) with `arguments`, the last one being the operations."""
    inventory = tmp_path / "shop.py"
    inventory.write_text("from phoenix.inventory import hosts_for\n\nservers = hosts_for(__file__)\n")
    inventory.with_suffix(".yml").write_text(INVENTORY)
    return run_pyinfra(*arguments[:-1], str(inventory), arguments[-1])


def test_each_host_gets_a_group_named_after_its_short_name():
    assert host_limit.short_name_groups(SANDBOX_NAMES, {"servers", "sandbox"}) == {
        "web1": ["@sandbox/phx-sandbox-web1"],
        "db1": ["@sandbox/phx-sandbox-db1"],
    }


def test_a_short_name_never_replaces_a_group_of_the_inventory_file():
    assert host_limit.short_name_groups({"servers": "@sandbox/x", "all": "@sandbox/y"}, {"servers"}) == {}


@pytest.mark.parametrize(
    ("argv", "patterns"),
    [
        (["pyinfra", "inventories/sandbox.py", "deploy.py"], []),
        (["pyinfra", "--limit", "web1", "--limit=db*", "inventories/sandbox.py", "deploy.py"], ["web1", "db*"]),
        (["pyinfra", "inventories/sandbox.py", "exec", "--", "echo", "--limit", "x"], []),
    ],
)
def test_limit_patterns_are_read_from_pyinfras_command_line(argv, patterns):
    assert host_limit.limit_patterns(argv) == patterns


def test_limits_matching_a_group_or_a_host_name_pass():
    groups = {"web1", "db1", "servers", "sandbox", "all"}

    for pattern in ("web1", "servers", "@sandbox/phx-sandbox-*", "@sandbox/phx-sandbox-db1"):
        assert host_limit.unmatched_limit_errors([pattern], SANDBOX_NAMES, groups, "sandbox.py") == []


def test_a_limit_matching_no_host_names_the_short_names_groups_and_pyinfra_names():
    groups = {"web1", "db1", "servers", "sandbox", "all"}

    assert host_limit.unmatched_limit_errors(["web9", "web*"], SANDBOX_NAMES, groups, "sandbox.py") == [
        f"--limit {pattern!r} matches no host of sandbox.py: expected a host's short name (web1, db1), a group"
        " (all, sandbox, servers) or a pyinfra host name (@sandbox/phx-sandbox-web1, @sandbox/phx-sandbox-db1)"
        for pattern in ("web9", "web*")
    ]


def test_pyinfra_with_a_limit_matching_no_host_stops_before_touching_any_host(tmp_path):
    result = run_on_inventory(tmp_path, "-y", "--limit", "web9", "deploy.py")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        "phoenix: inventory not loaded, no host was touched:",
        f"--limit 'web9' matches no host of {tmp_path / 'shop.py'}: expected a host's short name (web1, vault1),"
        " a group (all, servers, shop)",
    ]


def test_pyinfra_debug_inventory_prints_the_inventory(tmp_path):
    result = run_on_inventory(tmp_path, "debug-inventory")

    assert result.returncode == 0, result.stderr
    assert "--> Groups: web1, servers, shop" in result.stderr
    assert "internal exception" not in result.stderr


def test_pyinfra_debug_inventory_as_json_has_every_host_with_its_short_name_group_and_no_secret(tmp_path):
    result = run_on_inventory(tmp_path, "--json", "debug-inventory")

    assert result.returncode == 0, result.stderr
    hosts = {host["name"]: host for host in json.loads(result.stdout)}
    assert sorted(hosts) == ["vault1", "web1"]
    assert "web1" in hosts["web1"]["groups"] and "vault1" not in hosts["web1"]["groups"]
    assert hosts["web1"]["data"]["secrets"].startswith("<Secrets from ")
    generated = (Path(hosts["web1"]["data"]["secrets"].split()[2].rstrip(":"))).read_text()
    password = generated.split("session_secret: ")[1].split()[0]
    assert password not in result.stdout + result.stderr


def test_the_connectors_group_is_a_known_group(tmp_path):
    inventory = tmp_path / "sandbox.py"
    inventory.write_text("servers = []\n")

    groups = host_limit.check_limit(["pyinfra", "--limit", "@sandbox", "x.py"], str(inventory), SANDBOX_NAMES)

    assert sorted(groups) == ["db1", "web1"]
