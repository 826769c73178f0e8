"""Bad inventories are refused before any host is touched, each problem named with file and key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from repository_pyinfra import run_pyinfra

from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from phoenix.inventory_checks import FORMAT_CHECKER, source_errors

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


def test_an_option_that_moved_is_refused_naming_its_new_place(write_inventory):
    path = write_inventory(ENVIRONMENT + "drill:\n  known_record_query: SELECT 1\nhosts:\n  web1: {}\n")

    assert load_error(path) == (
        f"{path}: at 'drill': Additional properties are not allowed ('known_record_query' was unexpected):"
        " it is app.known_record_query now, one per app (defaults.app for every host)"
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

    result = run_pyinfra("-y", str(inventory), "deploy.py")

    assert result.returncode != 0
    assert "no host was touched" in result.stderr
    assert f"{tmp_path / 'broken.yml'}: at 'hosts.web1.app': " in result.stderr
    assert "'prot' was unexpected" in result.stderr


def test_pyinfra_with_a_missing_app_source_or_release_stops_before_touching_any_host(tmp_path):
    inventory = tmp_path / "shop.py"
    inventory.write_text("from phoenix.inventory import hosts_for\n\nservers = hosts_for(__file__)\n")
    (tmp_path / "shop.yml").write_text(
        ENVIRONMENT
        + "connection:\n  type: ssh\ndefaults: {backup: {enabled: false}}\n"
        + "hosts:\n  web1:\n    roles: [nginx, app, postgres]\n    ssh: {host: 192.0.2.1, user: alice}\n"
        + "    admins: [{name: alice, ssh_keys: ['ssh-ed25519 AAAA alice@laptop']}]\n"
        + "    app: {source: ap, releases: {'2.0.0': app, '3.0.0': releases/links-3.0.0-py3-none-any.whl}}\n"
    )

    result = run_pyinfra("-y", str(inventory), "deploy.py")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-3:] == [
        "phoenix: inventory not loaded, no host was touched:",
        f"{tmp_path / 'shop.yml'}: at 'hosts.web1.app.source': directory {REPOSITORY / 'ap'} not found"
        " (expected a directory with a pyproject.toml, or a .whl)",
        f"{tmp_path / 'shop.yml'}: at 'hosts.web1.app.releases.3.0.0':"
        f" wheel {REPOSITORY / 'releases/links-3.0.0-py3-none-any.whl'} not found",
    ]


def test_releases_from_pypi_with_locks_of_their_own_are_checked_too(tmp_path):
    app = {
        "source": "kinto[postgresql]==26.4.0",
        "releases": {
            "26.5.0": {"source": "kinto[postgresql]==26.5.0", "lock": "locks/kinto-26.5.0.lock"},
            "27.0.0": {"source": "kinto==27.0.0", "lock": "locks/kinto-27.0.0.lock"},
        },
    }
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "kinto-26.5.0.lock").write_text("")

    errors = source_errors("kinto.yml", {"kinto1": {"roles": ["app"], "app": app}}, tmp_path)

    assert errors == [
        f"kinto.yml: at 'hosts.kinto1.app.releases.27.0.0.lock': lock {tmp_path / 'locks/kinto-27.0.0.lock'} not found"
    ]


@pytest.mark.parametrize("path", sorted(REPOSITORY.glob("tests/e2e/own_apps/*.yml")), ids=lambda path: path.name)
def test_the_own_apps_inventories_sources_and_locks_exist(path):
    assert source_errors(str(path), load_environment(path).hosts, REPOSITORY) == []


@pytest.mark.parametrize("path", sorted((REPOSITORY / "inventories").glob("*.yml")), ids=lambda path: path.name)
def test_the_repositorys_inventories_are_valid(path):
    environment = load_environment(path)

    assert environment.hosts
    assert environment.name == path.stem


def test_a_host_defined_twice_is_refused_naming_both_lines(write_inventory, shop_inventory_text):
    path = write_inventory(shop_inventory_text + "  web1:\n    roles: [vault]\n")
    web1_lines = [number for number, line in enumerate(path.read_text().splitlines(), 1) if line == "  web1:"]

    assert load_error(path) == f"{path}: at 'hosts.web1': defined twice (lines {web1_lines[0]} and {web1_lines[1]})"


def test_a_duplicated_nested_key_is_refused_with_every_other_problem_at_once(write_inventory):
    path = write_inventory(
        ENVIRONMENT
        + "hosts:\n"  # line 3
        + "  web1:\n    app:\n      port: 6543\n      workers: 2\n      port: 7000\n"  # port on lines 6 and 8
        + "    backup:\n      files: {schedule: daily, schedule: hourly}\n"  # line 10
        + "    timezon: Etc/UTC\n"
    )

    assert load_error(path).splitlines() == [
        f"{path}: at 'hosts.web1.app.port': defined twice (lines 6 and 8)",
        f"{path}: at 'hosts.web1.backup.files.schedule': defined twice (line 10, columns 15 and 32)",
        f"{path}: at 'hosts.web1': Additional properties are not allowed ('timezon' was unexpected)",
    ]


def test_keys_merged_in_with_yaml_anchors_may_be_overridden(write_inventory):
    path = write_inventory(
        ENVIRONMENT
        + "connection: {type: docker}\n"
        + "defaults: {backup: {enabled: false}}\n"
        + "hosts:\n  web1: &web\n    roles: [app, postgres]\n    timezone: Etc/UTC\n"
        + "  web2:\n    <<: *web\n    timezone: Europe/Paris\n"
    )

    assert load_environment(path).hosts["web2"]["timezone"] == "Europe/Paris"


# A docker environment (no ssh.host needed) without backups, for checks of one host's settings.
ONE_HOST = ENVIRONMENT + "connection: {type: docker}\ndefaults: {backup: {enabled: false}}\nhosts:\n  web1:\n"


@pytest.mark.parametrize(
    ("setting", "key_path", "message"),
    [
        (
            "ssh: {host: 203.0.113.300}",
            "ssh.host",
            "'203.0.113.300' is not a valid IPv4 address (Octet 300 (> 255) not permitted in '203.0.113.300')",
        ),
        ("ssh: {host: 'web 1.example.com'}", "ssh.host", "'web 1.example.com' is not a host name"),
        ("address: 10.0.0.256", "address", "'10.0.0.256' is not a valid IPv4 address (Octet 256 (> 255)"),
        ("address: db1.internal", "address", "'db1.internal' is not a valid IPv4 address (Expected 4 octets"),
        ("address: 'fe80::1::2'", "address", "'fe80::1::2' is not a valid IPv6 address"),
        ("site: {server_name: 203.0.113.300}", "site.server_name", "'203.0.113.300' is not a valid IPv4 address"),
        ("vault: {server_name: 1.2.3}", "vault.server_name", "'1.2.3' is not a valid IPv4 address (Expected 4 octets"),
        ("vault: {allow_from: [203.0.113.300]}", "vault.allow_from.0", "'203.0.113.300' is not an IPv4 address"),
        ("vault: {allow_from: [10.0.0.0/33]}", "vault.allow_from.0", "'10.0.0.0/33' is not an IPv4 address"),
        (
            "vault: {allow_from: [10.0.0.1/24]}",
            "vault.allow_from.0",
            "'10.0.0.1/24' has host bits set: did you mean '10.0.0.0/24'?",
        ),
    ],
)
def test_an_invalid_address_is_refused_at_its_key(write_inventory, setting, key_path, message):
    path = write_inventory(ONE_HOST + f"    {setting}\n")

    assert load_error(path).startswith(f"{path}: at 'hosts.web1.{key_path}': {message}")


def test_valid_host_names_addresses_and_networks_are_accepted(write_inventory):
    path = write_inventory(
        ONE_HOST
        + "    address: 'fd00::30'\n    ssh: {host: vault-1.example.net}\n    site: {server_name: '*.example.com'}\n"
        + "    vault: {server_name: vault.example.net., allow_from: [203.0.113.10, 10.0.0.0/8]}\n"
    )

    assert load_environment(path).hosts["web1"]["ssh"]["host"] == "vault-1.example.net"


def test_an_unknown_time_zone_is_refused_with_the_closest_name(write_inventory, shop_inventory_text):
    path = write_inventory(
        shop_inventory_text.replace("    user: alice\n", "    user: alice\n  timezone: Europe/Pariss\n")
    )

    assert load_error(path) == (
        f"{path}: at 'defaults.timezone': 'Europe/Pariss' is not a time zone of the zoneinfo database;"
        " did you mean 'Europe/Paris'?"
    )


SCHEDULE_KEYS = {
    "backup.database.schedule": "backup: {database: {schedule: VALUE}}",
    "backup.files.schedule": "backup: {files: {schedule: VALUE}}",
    "vault.retention_schedule": "vault: {retention_schedule: VALUE}",
    "vault.check_schedule": "vault: {check_schedule: VALUE}",
}
SYNTAX_HINT = "use systemd OnCalendar syntax, e.g. '*-*-* 02:15:00' or 'daily'"


@pytest.mark.parametrize("key_path", SCHEDULE_KEYS)
@pytest.mark.parametrize(
    ("schedule", "hint"),
    [
        ("every night at 2", SYNTAX_HINT),
        ("15 2 * * *", f"this looks like cron syntax; {SYNTAX_HINT}"),
        ("*-*-* 25:00", SYNTAX_HINT),
    ],
)
def test_a_schedule_systemd_rejects_is_refused_with_a_hint(write_inventory, key_path, schedule, hint):
    path = write_inventory(ONE_HOST + "    " + SCHEDULE_KEYS[key_path].replace("VALUE", f"'{schedule}'") + "\n")

    message = load_error(path)

    assert message.startswith(
        f"{path}: at 'hosts.web1.{key_path}': '{schedule}' is not a systemd OnCalendar expression ("
    )
    assert message.endswith(f"); {hint}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("setting", "key_path", "value"),
    [
        ("app: {data_dirs: [/var/lib/links/uploads, uploads]}", "app.data_dirs.1", "uploads"),
        ("app: {static_dir: srv/static}", "app.static_dir", "srv/static"),
        ("backup: {files: {paths: [etc]}}", "backup.files.paths.0", "etc"),
        ("vault: {data_dir: var/lib/phoenix-vault}", "vault.data_dir", "var/lib/phoenix-vault"),
    ],
)
def test_a_relative_server_path_is_refused(write_inventory, setting, key_path, value):
    path = write_inventory(ONE_HOST + f"    {setting}\n")

    assert load_error(path) == (
        f"{path}: at 'hosts.web1.{key_path}': '{value}' is not an absolute path (it must start with /)"
    )


def test_an_empty_data_dir_is_refused(write_inventory):
    path = write_inventory(ONE_HOST + "    app: {data_dirs: ['']}\n")

    assert load_error(path) == f"{path}: at 'hosts.web1.app.data_dirs.0': '' should be non-empty"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "roles: [nginx, app, postgres]\n    app: {port: 5432}",
            "at 'hosts.web1.app.port': port 5432 is taken by PostgreSQL (postgres role) on this host",
        ),
        (
            "roles: [nginx, app, postgres]\n    ssh: {port: 443}",
            "at 'hosts.web1.roles': port 443 is taken by sshd on this host",
        ),
        (
            "roles: [vault]\n    ssh: {port: 8443}",
            "at 'hosts.web1.vault.port': port 8443 is taken by sshd on this host",
        ),
    ],
    ids=["app-on-postgres", "https-on-ssh", "vault-on-ssh"],
)
def test_two_services_on_one_port_of_a_host_are_refused(write_inventory, settings, message):
    path = write_inventory(ONE_HOST + f"    {settings}\n")

    assert load_error(path) == f"{path}: {message}"


def test_every_format_the_schema_names_is_checked():
    schema_text = (REPOSITORY / "phoenix" / "schema.yaml").read_text()
    named = set(re.findall(r"format: ([a-z0-9-]+)", schema_text))

    assert named and named <= set(FORMAT_CHECKER.checkers)  # jsonschema ignores a format it does not know
