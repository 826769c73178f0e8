"""Schema defaults, the `defaults:` section, and the checks that keep code, schema and docs in step."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jsonschema
import pytest

from phoenix.inventory import load_environment, load_schema
from phoenix.schema_doc import markdown

REPOSITORY = Path(__file__).resolve().parents[2]
# Backups are off here: these tests are about the merging of settings, not about a vault.
ENVIRONMENT = "environment:\n  name: shop\nconnection:\n  type: docker\ndefaults:\n  backup: {enabled: false}\n"

# Host data pyinfra_hosts() computes next to the schema's settings (see phoenix/inventory.py).
COMPUTED_HOST_DATA = {
    "phoenix_host",
    "phoenix_environment",
    "phoenix_inventory",
    "throwaway",
    "tls_mode",
    "database_address",
    "postgres_clients",
    "backup_jobs",
    "backup_target",
    "vault_clients",
    "vault_server_name",
    "archive_vault_address",
    "archive_servers",
    "restore_from_archive",
    "secrets",
    "stand_in",
    "stand_in_container",
    "run_flags",  # the run's own --data flags (phoenix/run_flags.yaml), not inventory settings
}

# Variable names the roles and phoenix/ give to parts of a host's settings, and where each lives in $defs.host.
SETTING_VARIABLES = {
    "host": (),
    "app": ("app",),
    "site": ("site",),
    "ssh": ("ssh",),
    "database": ("app", "database"),
    "limits": ("journald",),
    "firewall": ("firewall",),
    "postgres": ("postgres",),
    "admin": ("admins", "[]"),
}


@functools.cache
def host_schema() -> dict:
    return load_schema()["$defs"]["host"]


def option_keys(*path: str) -> set[str]:
    """Returns the option names under `path` in $defs.host ("[]" steps into a list's items)."""
    node = host_schema()
    for part in path:
        node = node["items"] if part == "[]" else node["properties"][part]
    return set(node["properties"])


def all_options(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    """Returns (dotted path, option schema) for every property in `schema`, nested ones included."""
    options = []
    for key, option in schema.get("properties", {}).items():
        options.append((f"{path}{key}", option))
        options += all_options(option, f"{path}{key}.")
        options += all_options(option.get("items", {}), f"{path}{key}[].")
    return options


def every_option() -> list[tuple[str, dict]]:
    """Returns (dotted path, option schema) for every option of the file and of a host."""
    schema = load_schema()
    return all_options(schema) + all_options(schema["$defs"]["host"], "hosts.<name>.")


def test_schema_defaults_fill_in_what_a_host_leaves_out(write_inventory):
    environment = load_environment(write_inventory(ENVIRONMENT + "hosts:\n  web1:\n    roles: [app, postgres]\n"))

    web1 = environment.hosts["web1"]
    assert web1["app"]["port"] == 6543
    assert web1["app"]["process_manager"] == "systemd"
    assert web1["app"]["database"] == {"host": "localhost", "name": "links", "user": "links"}
    assert web1["timezone"] == "Etc/UTC"
    assert web1["journald"] == {"max_use": "500M", "max_retention": "1month"}
    assert web1["hostname"] == "web1"
    assert environment.throwaway is False
    assert environment.connection == {"type": "docker", "sandbox": "sandbox"}


def test_defaults_section_is_merged_key_by_key_and_the_hosts_own_value_wins(write_inventory):
    path = write_inventory(
        ENVIRONMENT
        + "  timezone: Europe/Paris\n  app:\n    port: 7000\n    workers: 4\n"
        + "hosts:\n  web1:\n    app:\n      workers: 8\n  web2:\n    timezone: Asia/Tokyo\n"
    )

    hosts = load_environment(path).hosts

    assert hosts["web1"]["app"]["port"] == 7000
    assert hosts["web1"]["app"]["workers"] == 8
    assert hosts["web1"]["app"]["process_manager"] == "systemd"
    assert hosts["web1"]["timezone"] == "Europe/Paris"
    assert hosts["web2"]["app"]["workers"] == 4
    assert hosts["web2"]["timezone"] == "Asia/Tokyo"


def test_lists_from_defaults_are_replaced_by_a_hosts_list_not_merged(write_inventory):
    path = write_inventory(
        ENVIRONMENT
        + "  roles: [nginx, app, postgres]\n  firewall:\n    extra_tcp_ports: [8443, 9000]\n"
        + "hosts:\n  web1:\n    firewall:\n      extra_tcp_ports: [7000]\n  db1:\n    roles: [postgres]\n"
    )

    hosts = load_environment(path).hosts

    assert hosts["web1"]["roles"] == ["nginx", "app", "postgres"]
    assert hosts["web1"]["firewall"]["extra_tcp_ports"] == [7000]
    assert hosts["db1"]["roles"] == ["postgres"]
    assert hosts["db1"]["firewall"]["extra_tcp_ports"] == [8443, 9000]


def test_defaults_section_does_not_leak_between_hosts(write_inventory):
    path = write_inventory(ENVIRONMENT + "  app:\n    data_dirs: [/srv/a]\nhosts:\n  web1: {}\n  web2: {}\n")
    hosts = load_environment(path).hosts

    hosts["web1"]["app"]["data_dirs"].append("/srv/b")

    assert hosts["web2"]["app"]["data_dirs"] == ["/srv/a"]


@pytest.mark.parametrize(
    ("path", "option"),
    [pytest.param(path, option, id=path) for path, option in every_option() if "default" in option],
)
def test_every_default_is_valid_and_said_in_its_description(path, option):
    schema = load_schema()
    jsonschema.Draft202012Validator({**option, "$defs": schema["$defs"]}).validate(option["default"])
    if option.get("type") == "object" or "$ref" in option:
        return  # a mapping's defaults are those of its options, each documented there
    description = option["description"]
    assert "Defaults to " in description, f"{path}: description does not say its default"
    last_sentence = description.rsplit("Defaults to ", 1)[1]
    assert last_sentence.endswith(".") and ". " not in last_sentence, f"{path}: 'Defaults to ...' is not last"


def test_every_option_has_a_description():
    undocumented = [path for path, option in every_option() if not option.get("description")]

    assert undocumented == []


def test_every_host_setting_the_code_reads_is_in_the_schema():
    sources = [*sorted((REPOSITORY / "roles").glob("*.py")), REPOSITORY / "phoenix" / "inventory.py"]
    code = "\n".join(path.read_text() for path in sources)
    unknown, checked = [], 0
    for name in re.findall(r"\bhost\.data\.(\w+)", code):
        checked += 1
        if name not in option_keys() | COMPUTED_HOST_DATA:
            unknown.append(f"host.data.{name}")
    for variable, key in re.findall(r"(?:\b|\.)(\w+)\[[\"'](\w+)[\"']\]", code):
        if variable in SETTING_VARIABLES:
            checked += 1
            if key not in option_keys(*SETTING_VARIABLES[variable]):
                unknown.append(f"{variable}[{key!r}]")
    templates = "\n".join(path.read_text() for path in sorted((REPOSITORY / "templates").rglob("*.j2")))
    for variable, key in re.findall(r"\b(app|site)\.(\w+)", templates):
        checked += 1
        if key not in option_keys(variable):
            unknown.append(f"template {variable}.{key}")

    assert unknown == []
    assert checked > 40, "the patterns no longer find the code's reads of host settings"


def test_docs_inventory_md_is_the_generated_reference():
    assert (REPOSITORY / "docs" / "inventory.md").read_text() == markdown(), (
        "run: phoenix schema-doc > docs/inventory.md"
    )


def test_reference_documents_every_host_option_under_hosts_and_defaults():
    reference = markdown()

    for path, _ in all_options(load_schema()["$defs"]["host"]):
        assert f"### `hosts.<name>.{path}`" in reference
        assert f"`defaults.{path}`" in reference
    assert reference.splitlines()[0] == (
        "<!-- Generated by `phoenix schema-doc` from phoenix/schema.yaml: do not edit by hand. -->"
    )
    assert markdown() == reference
