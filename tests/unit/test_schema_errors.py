"""Bad inventories are refused before any host is touched, each problem named with file and key path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment

REPOSITORY = Path(__file__).resolve().parents[2]
ENVIRONMENT = "environment:\n  name: shop\n"


def load_error(path: Path) -> str:
    with pytest.raises(PhoenixError) as caught:
        load_environment(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("hosts_text", "line_and_column"),
    [
        ("hosts:\n  web1:\n    roles: [app]\n     ssh: {}\n", "6:6"),
        ("hosts:\n  web1:\n\troles: [app]\n", "5:1"),
    ],
    ids=["misindented-key", "tab-indent"],
)
def test_invalid_yaml_is_reported_with_file_line_and_column(write_inventory, hosts_text, line_and_column):
    path = write_inventory(ENVIRONMENT + hosts_text)

    assert load_error(path).startswith(f"{path}:{line_and_column}: invalid YAML: ")


def test_misspelt_key_names_its_parent_path_and_the_unexpected_key(write_inventory):
    path = write_inventory(ENVIRONMENT + "hosts:\n  web1:\n    app:\n      prot: 6543\n")

    assert load_error(path) == (
        f"{path}: at 'hosts.web1.app': Additional properties are not allowed ('prot' was unexpected)"
    )


def test_misspelt_key_under_defaults_is_reported_at_defaults(write_inventory):
    path = write_inventory(ENVIRONMENT + "defaults:\n  sitee: {}\nhosts:\n  web1: {}\n")

    assert load_error(path) == f"{path}: at 'defaults': Additional properties are not allowed ('sitee' was unexpected)"


def test_port_that_is_not_a_number_is_a_type_error_at_its_key(write_inventory):
    path = write_inventory(ENVIRONMENT + "hosts:\n  web1:\n    app:\n      port: abc\n")

    assert load_error(path) == f"{path}: at 'hosts.web1.app.port': 'abc' is not of type 'integer'"


def test_enum_typo_lists_the_allowed_values(write_inventory):
    path = write_inventory(ENVIRONMENT + "hosts:\n  web1:\n    app:\n      process_manager: supervisr\n")

    message = load_error(path)

    assert message.startswith(f"{path}: at 'hosts.web1.app.process_manager': 'supervisr' is not one of")
    assert "'supervisor'" in message and "'systemd'" in message


def test_missing_required_section_is_reported_at_the_top_level(write_inventory):
    path = write_inventory("hosts:\n  web1: {}\n")

    assert load_error(path) == f"{path}: at '(top level)': 'environment' is a required property"


def test_every_schema_error_in_a_file_is_reported_at_once(write_inventory):
    path = write_inventory(
        ENVIRONMENT
        + "hosts:\n"
        + "  web1:\n    roles: [nginx, web]\n    ssh: {port: 70000}\n"
        + "  web2:\n    timezon: Europe/Paris\n    site: {hsts_max_age: -1}\n"
    )

    lines = load_error(path).splitlines()

    assert [line.split("': ", 1)[0] for line in lines] == [
        f"{path}: at 'hosts.web1.roles.1",
        f"{path}: at 'hosts.web1.ssh.port",
        f"{path}: at 'hosts.web2",
        f"{path}: at 'hosts.web2.site.hsts_max_age",
    ]
    assert "'timezon' was unexpected" in lines[2]


def test_app_database_on_an_unknown_host_names_the_known_hosts(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text.replace("host: db1", "host: db9"))

    assert load_error(path) == (
        f"{path}: at 'hosts.web1.app.database.host': 'db9' is not a host of this environment (hosts: db1, vault1, web1)"
    )


def test_app_database_on_a_host_without_postgres_is_refused(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text.replace("roles: [postgres]", "roles: []"))

    assert load_error(path) == f"{path}: at 'hosts.web1.app.database.host': host 'db1' has no postgres role"


def test_local_database_needs_the_postgres_role_on_the_same_host(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text.replace("host: db1", "host: localhost"))

    assert load_error(path).startswith(
        f"{path}: at 'hosts.web1.app.database.host': localhost needs the postgres role on this host"
    )


def test_nginx_without_app_on_the_same_host_is_refused(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text.replace("roles: [postgres]", "roles: [postgres, nginx]"))

    assert load_error(path) == f"{path}: at 'hosts.db1.roles': nginx proxies to the app on the same host; add app"


def test_ssh_connection_needs_each_hosts_ssh_host(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text.replace("      host: 192.0.2.20\n", "      port: 22\n"))

    assert load_error(path) == f"{path}: at 'hosts.db1.ssh.host': required with connection type ssh"


def test_ssh_user_that_is_not_an_admin_is_refused(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text.replace("    user: alice", "    user: root"))

    lines = load_error(path).splitlines()

    assert len(lines) == 3
    assert lines[0].startswith(f"{path}: at 'hosts.web1.ssh.user': 'root' is not one of the admins (alice)")
    assert lines[1].startswith(f"{path}: at 'hosts.db1.ssh.user': 'root' is not one of the admins (alice)")
    assert lines[2].startswith(f"{path}: at 'hosts.vault1.ssh.user': 'root' is not one of the admins (alice)")


def test_pyinfra_with_a_bad_inventory_stops_before_touching_any_host(tmp_path):
    inventory = tmp_path / "broken.py"
    inventory.write_text("from phoenix.inventory import hosts_for\n\nservers = hosts_for(__file__)\n")
    (tmp_path / "broken.yml").write_text(
        ENVIRONMENT
        + "connection:\n  type: ssh\n"
        + "hosts:\n  web1:\n    roles: [nginx, app, postgres]\n    ssh: {host: 192.0.2.1}\n"
        + "    app: {prot: 6543}\n"
    )

    result = subprocess.run(
        [str(REPOSITORY / ".venv" / "bin" / "pyinfra"), "-y", str(inventory), "deploy.py"],
        check=False,
        cwd=REPOSITORY,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "no host was touched" in result.stderr
    assert f"{tmp_path / 'broken.yml'}: at 'hosts.web1.app': " in result.stderr
    assert "'prot' was unexpected" in result.stderr


@pytest.mark.parametrize("path", sorted((REPOSITORY / "inventories").glob("*.yml")), ids=lambda path: path.name)
def test_the_repositorys_inventories_are_valid(path):
    environment = load_environment(path)

    assert environment.hosts
    assert environment.name == path.stem
