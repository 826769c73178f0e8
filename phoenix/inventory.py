"""Loading an environment's inventory YAML into pyinfra hosts.

inventory YAML -> schema validation (every error at once, with file and key path) ->
defaults merged into each host -> cross-host checks -> secrets -> pyinfra host list.
Nothing here connects to any host, so bad input stops before a host is touched.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from phoenix import archive_plan, backup_plan, host_limit, inventory_checks, run_flags, sandbox_state, strict_yaml
from phoenix.errors import PhoenixError, refuse
from phoenix.secrets import Secrets, load_secrets

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


def load_schema() -> dict:
    """Returns the inventory schema as a dict."""
    with SCHEMA_PATH.open() as schema_file:
        return yaml.load(schema_file, Loader=strict_yaml.OWN_FILES_LOADER)


def read_yaml(path: Path) -> Any:
    """Given a YAML file, returns its content; raises PhoenixError naming file, line and problem.

    A key defined twice in one mapping is a problem too (strict_yaml).
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise PhoenixError(f"{path}: cannot read: {error.strerror}") from error
    try:
        return strict_yaml.load(text, str(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise PhoenixError(f"{where}: invalid YAML: {problem}") from error


def _key_path(parts) -> str:
    return ".".join(str(part) for part in parts) or "(top level)"


def schema_errors(data: Any, schema: dict, filename: str) -> list[str]:
    """Given parsed data, returns one message per schema violation, ordered by key path.

    Formats (addresses, time zones, schedules, paths) are checked too: see inventory_checks.
    """
    validator = jsonschema.Draft202012Validator(schema, format_checker=inventory_checks.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(data), key=lambda error: list(map(str, error.absolute_path)))
    return [
        f"{filename}: at '{_key_path(error.absolute_path)}': {inventory_checks.format_message(error)}"
        for error in errors
    ]


def apply_defaults(schema: dict, data: Any, root: dict | None = None) -> Any:
    """Returns a copy of `data` with every missing property given its schema default, recursively."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    if not isinstance(data, dict):
        return data
    result = dict(data)
    for key, subschema in schema.get("properties", {}).items():
        if key not in result and "default" in subschema:
            result[key] = copy.deepcopy(subschema["default"])
        if key in result:
            result[key] = apply_defaults(subschema, result[key], root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in result.keys() - schema.get("properties", {}).keys():
            result[key] = apply_defaults(extra, result[key], root)
    return result


def deep_merge(base: dict, override: dict) -> dict:
    """Returns base updated by override, merging nested dicts key by key; lists are replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class Environment:
    """A validated environment: its name, settings per host, and how to reach each host."""

    path: Path
    name: str
    throwaway: bool
    connection: dict
    hosts: dict[str, dict]
    drill: dict = field(default_factory=dict)
    sandbox_name: str = ""  # with connection type docker or sandbox-ssh: the sandbox holding the hosts

    @property
    def in_sandbox(self) -> bool:
        """The hosts are a Phoenix sandbox's containers (connection type docker or sandbox-ssh)."""
        return self.connection["type"] in sandbox_state.SANDBOX_CONNECTIONS

    @property
    def over_ssh(self) -> bool:
        """The hosts are reached over SSH (connection type ssh or sandbox-ssh): a remote shell gets one string."""
        return self.connection["type"] in ("ssh", "sandbox-ssh")


def _merge_hosts(raw: dict, schema: dict) -> dict[str, dict]:
    host_schema = {"$ref": "#/$defs/host"}
    hosts = {}
    for name, settings in raw["hosts"].items():
        merged = deep_merge(raw.get("defaults") or {}, settings or {})
        merged = apply_defaults(host_schema, merged, schema)
        merged["hostname"] = merged["hostname"] or name
        hosts[name] = merged
    return hosts


def cross_host_errors(filename: str, connection: dict, hosts: dict[str, dict]) -> list[str]:
    """Given merged host settings, returns messages for settings that contradict each other."""
    errors = []
    for name, host in hosts.items():
        at = f"{filename}: at 'hosts.{name}"
        roles = host["roles"]
        if connection["type"] == "ssh" and not host["ssh"].get("host"):
            errors.append(f"{at}.ssh.host': required with connection type ssh")
        admin_names = [admin["name"] for admin in host["admins"]]
        if connection["type"] != "docker" and host["ssh"]["user"] not in admin_names:
            admins = ", ".join(admin_names) or "none"
            errors.append(
                f"{at}.ssh.user': '{host['ssh']['user']}' is not one of the admins ({admins});"
                " sshd refuses root logins once deployed (first deploy: --data ssh_user=root)"
            )
        if "nginx" in roles and "app" not in roles:
            errors.append(f"{at}.roles': nginx proxies to the app on the same host; add app")
        if "app" in roles:
            database_host = host["app"]["database"]["host"]
            if database_host == "localhost":
                if "postgres" not in roles:
                    errors.append(
                        f"{at}.app.database.host': localhost needs the postgres role on this host,"
                        " or name the database host"
                    )
            elif database_host not in hosts:
                errors.append(
                    f"{at}.app.database.host': '{database_host}' is not a host of this environment"
                    f" (hosts: {', '.join(sorted(hosts))})"
                )
            elif "postgres" not in hosts[database_host]["roles"]:
                errors.append(f"{at}.app.database.host': host '{database_host}' has no postgres role")
    return errors + backup_plan.errors(filename, hosts)


def load_environment(path: str | Path) -> Environment:
    """Given inventories/<env>.py or .yml, returns the validated Environment.

    Raises PhoenixError listing every problem found, each with file and key path.
    """
    path = Path(path).with_suffix(".yml")
    try:
        raw, errors = read_yaml(path), []
    except strict_yaml.DuplicateKeys as duplicates:
        raw, errors = duplicates.data, duplicates.messages  # reported with the schema's errors, all at once
    schema = load_schema()
    errors += schema_errors(raw, schema, str(path))
    if errors:
        raise PhoenixError("\n".join(errors))
    hosts = _merge_hosts(raw, schema)  # host defaults apply after merging, so they never mask `defaults`
    environment = apply_defaults(schema["properties"]["environment"], raw["environment"], schema)
    connection = apply_defaults(schema["properties"]["connection"], raw.get("connection", {}), schema)
    errors = cross_host_errors(str(path), connection, hosts)
    errors += inventory_checks.port_clash_errors(str(path), hosts)
    errors += inventory_checks.static_errors(str(path), hosts)
    errors += inventory_checks.worker_errors(str(path), hosts)
    if errors:
        raise PhoenixError("\n".join(errors))
    return Environment(
        path=path,
        name=environment["name"],
        throwaway=environment["throwaway"],
        connection=connection,
        hosts=hosts,
        drill=apply_defaults(schema["properties"]["drill"], raw.get("drill", {}), schema),
        sandbox_name=os.environ.get("PHOENIX_SANDBOX") or connection["sandbox"],
    )


_environments: dict[str, Environment] = {}


def environment_of(path: str) -> Environment:
    """Given an inventory path, returns its Environment, loaded once per process (every host of a
    pyinfra run asks for the same one); raises PhoenixError as load_environment does."""
    if path not in _environments:
        _environments[path] = load_environment(path)
    return _environments[path]


def _database_clients(environment: Environment, addresses: dict[str, str]) -> dict[str, list[dict]]:
    """Returns, per postgres host, the databases it serves and the addresses allowed to use them."""
    clients: dict[str, list[dict]] = {name: [] for name in environment.hosts}
    for name, host in environment.hosts.items():
        if "app" not in host["roles"]:
            continue
        database = host["app"]["database"]
        local = database["host"] == "localhost"
        server = name if local else database["host"]
        clients[server].append(
            {
                "database": database["name"],
                "user": database["user"],
                "address": "127.0.0.1" if local else addresses[name],
            }
        )
    return clients


def host_addresses(environment: Environment) -> dict[str, str]:
    """Returns every host's address: the sandbox's container addresses, or the inventory's."""
    if environment.in_sandbox:
        state = sandbox_state.read(environment.sandbox_name)
        missing = sorted(set(environment.hosts) - set(state["hosts"]))
        if missing:
            raise PhoenixError(
                f"{environment.path}: sandbox '{environment.sandbox_name}' has no host(s)"
                f" {', '.join(missing)}: run `phoenix sandbox up {environment.sandbox_name}"
                f" --hosts {','.join(environment.hosts)}`"
            )
        return {name: state["hosts"][name]["address"] for name in environment.hosts}
    return {name: host["address"] or host["ssh"]["host"] for name, host in environment.hosts.items()}


def archive_servers(environment: Environment, addresses: dict[str, str]) -> list[dict]:
    """Given every host's address, returns the hosts the vault's Barman archives as {name, address, version}."""
    return [
        {"name": name, "address": addresses[name], "version": environment.hosts[name]["postgres"]["version"]}
        for name in archive_plan.archived_hosts(environment.hosts)
    ]


def _connection_name(environment: Environment, name: str) -> str:
    if environment.connection["type"] == "docker":
        return sandbox_state.pyinfra_host_name(sandbox_state.container_name(environment.sandbox_name, name))
    return name


def ssh_login(environment: Environment, name: str, addresses: dict[str, str] | None = None) -> dict:
    """Returns how SSH reaches host `name` ({host, port, user, key_file, known_hosts_file}): the inventory's
    ssh settings, or for a sandbox-ssh host its container's address with the sandbox's key and known_hosts."""
    login = dict(environment.hosts[name]["ssh"])
    if environment.connection["type"] == "sandbox-ssh":
        ssh_directory = sandbox_state.ssh_directory(environment.sandbox_name)
        login["host"] = (addresses or host_addresses(environment))[name]
        login["key_file"] = str(ssh_directory / "id_ed25519")
        login["known_hosts_file"] = str(ssh_directory / "known_hosts")
    return login


def _connection_data(environment: Environment, name: str, addresses: dict[str, str], login_user: str | None) -> dict:
    """Returns pyinfra's connection data for host `name`; `login_user` is --data ssh_user's, which pyinfra puts in
    place of the inventory's (root on a new server: no sudo then, a blank box may have none)."""
    if environment.connection["type"] == "docker":
        return {}
    ssh = ssh_login(environment, name, addresses)
    data = {"ssh_hostname": ssh["host"], "ssh_user": ssh["user"], "ssh_port": ssh["port"]}
    if ssh["key_file"]:
        data["ssh_key"] = ssh["key_file"]
    if ssh["known_hosts_file"]:
        data |= {"ssh_known_hosts_file": ssh["known_hosts_file"], "ssh_strict_host_key_checking": "yes"}
    if (login_user or ssh["user"]) != "root":
        data["_sudo"] = True
    return data


def _admins(environment: Environment, host: dict) -> list[dict]:
    """Returns the host's admins; in a sandbox-ssh sandbox each also logs in with the sandbox's key."""
    if environment.connection["type"] != "sandbox-ssh":
        return host["admins"]
    public_key_file = sandbox_state.ssh_directory(environment.sandbox_name) / "id_ed25519.pub"
    if not public_key_file.exists():
        raise PhoenixError(
            f"{environment.path}: sandbox '{environment.sandbox_name}' has no SSH key ({public_key_file}):"
            f" `phoenix up {environment.path}` makes it"
        )
    public_key = public_key_file.read_text().strip()
    return [{**admin, "ssh_keys": [*admin["ssh_keys"], public_key]} for admin in host["admins"]]


def pyinfra_hosts(
    environment: Environment, secrets: Secrets, addresses: dict[str, str] | None = None
) -> list[tuple[str, dict]]:
    """Returns the (pyinfra name, host data) pairs for an environment, secrets included.

    `addresses` replaces the hosts' own (phoenix/stand_in.py puts hosts into another sandbox).
    Raises PhoenixError for bad `--data` flags on pyinfra's command line (phoenix/run_flags.py).
    """
    flags = run_flags.from_command_line()
    addresses = addresses or host_addresses(environment)
    clients = _database_clients(environment, addresses)
    connection_type = environment.connection["type"]
    vault_clients = [
        {"name": name, "address": addresses[name]}
        for name, host in environment.hosts.items()
        if backup_plan.uses_vault(host)
    ]
    archived = archive_plan.archived_hosts(environment.hosts)
    vault = backup_plan.vault_host(environment.hosts)
    servers = archive_servers(environment, addresses)
    result = []
    for name, host in environment.hosts.items():
        database_host = host["app"]["database"]["host"]
        data = {
            **host,
            **_connection_data(environment, name, addresses, flags["ssh_user"]),
            "admins": _admins(environment, host),
            "phoenix_host": name,
            "phoenix_environment": environment.name,
            "phoenix_inventory": str(environment.path),
            "throwaway": environment.throwaway,
            "tls_mode": "self-signed" if environment.throwaway else host["site"]["tls"],
            "database_address": "localhost" if database_host == "localhost" else addresses[database_host],
            "postgres_clients": clients[name],
            "backup_jobs": backup_plan.jobs(host, backup_plan.databases_served(name, environment.hosts)),
            "backup_target": backup_plan.target(name, environment.hosts, connection_type),
            "vault_clients": vault_clients if "vault" in host["roles"] else [],
            "vault_server_name": backup_plan.vault_server_name(name, host, connection_type),
            # archive_plan: the vault's address where Barman pulls from this host; the hosts the vault archives
            "archive_vault_address": addresses[vault] if name in archived else "",
            "archive_servers": servers if "vault" in host["roles"] else [],
            # restore.py may recover its PostgreSQL from the vault's archive (a drill's stand-in: its source's)
            "restore_from_archive": name in archived,
            "secrets": secrets,
            "stand_in": "",  # phoenix/stand_in.py: "<env>/<host>" when this host takes another's place
            "stand_in_container": "",  # and the container it is
            "run_flags": flags,
        }
        result.append((_connection_name(environment, name), data))
    return result


def check_app_sources(environment: Environment) -> None:
    """Raises PhoenixError naming every app source that is missing from pyinfra's directory (as wheel_for reads it)."""
    errors = inventory_checks.source_errors(str(environment.path), environment.hosts, Path.cwd())
    if errors:
        raise PhoenixError("\n".join(errors))


def hosts_for(inventory_file: str) -> list[tuple[str, dict]]:
    """For use inside inventories/<env>.py: returns its hosts, or prints the problems and exits 2.

    Also defines a pyinfra group per short host name in the calling inventory file, so that
    `--limit web1` works; a --limit of pyinfra's that matches no host is one of the problems.
    """
    try:
        environment = load_environment(inventory_file)
        names = {name: _connection_name(environment, name) for name in environment.hosts}
        groups = host_limit.check_limit(sys.argv if "pyinfra_cli" in sys.modules else [], inventory_file, names)
        check_app_sources(environment)
        hosts = pyinfra_hosts(environment, load_secrets(environment))
    except PhoenixError as error:
        refuse(f"phoenix: inventory not loaded, no host was touched:\n{error}")
    sys._getframe(1).f_globals.update(groups)  # pyinfra makes a group of each list the inventory file defines
    return hosts
