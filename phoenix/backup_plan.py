"""Who backs up what, and where to: the backup jobs and vault clients an environment implies.

Every host with data (nginx, app or postgres role) gets a files job, and a postgres host one
database job per database it serves. Its snapshots go to the environment's vault host (role
vault) unless the host names another restic repository URL.
"""

from __future__ import annotations

import re
from datetime import timedelta
from ipaddress import ip_address

from phoenix import retention, sandbox_state
from phoenix.errors import PhoenixError

DATA_ROLES = ("nginx", "app", "postgres")


def vault_host(hosts: dict[str, dict]) -> str | None:
    """Returns the name of the environment's vault host, or None."""
    return next((name for name, host in hosts.items() if "vault" in host["roles"]), None)


def is_backed_up(host: dict) -> bool:
    """Returns True when the host holds data and its backups are enabled."""
    return host["backup"]["enabled"] and any(role in host["roles"] for role in DATA_ROLES)


def backed_up_hosts(hosts: dict[str, dict]) -> list[str]:
    return [name for name, host in hosts.items() if is_backed_up(host)]


def uses_vault(host: dict) -> bool:
    return is_backed_up(host) and not host["backup"]["repository"]


def parse_duration(text: str) -> timedelta:
    """Given "36h" or "7d", returns the timedelta."""
    match = re.fullmatch(r"([0-9]+)([hd])", text)
    if not match:
        raise PhoenixError(f"'{text}' is not a duration like 36h or 7d")
    amount = int(match.group(1))
    return timedelta(hours=amount) if match.group(2) == "h" else timedelta(days=amount)


def retention_policy(settings: dict) -> retention.Policy:
    """Given a vault's retention settings, returns the retention Policy."""
    return retention.Policy(
        keep_within=parse_duration(settings["keep_within"]),
        hourly=settings["hourly"],
        daily=settings["daily"],
        weekly=settings["weekly"],
        monthly=settings["monthly"],
        minimum_verified=settings["minimum_verified"],
    )


def errors(filename: str, hosts: dict[str, dict]) -> list[str]:
    """Given merged host settings, returns messages for backup settings that cannot work."""
    problems = []
    vaults = [name for name, host in hosts.items() if "vault" in host["roles"]]
    if len(vaults) > 1:
        problems.append(f"{filename}: at 'hosts': one vault host per environment, found {', '.join(vaults)}")
    for name, host in hosts.items():
        at = f"{filename}: at 'hosts.{name}"
        if "vault" in host["roles"]:
            mixed = [role for role in DATA_ROLES if role in host["roles"]]
            if mixed:
                problems.append(
                    f"{at}.roles': vault with {', '.join(mixed)}: a vault on a data host is not off-site;"
                    " give it a host of its own"
                )
            try:
                retention.check_policy(retention_policy(host["vault"]["retention"]))
            except PhoenixError as error:
                problems.append(f"{at}.vault.retention': {error}")
        if uses_vault(host) and not vaults:
            problems.append(
                f"{at}.backup': no host has the vault role: add one, set backup.repository to a"
                " restic repository URL, or set backup.enabled: false"
            )
    return problems


def vault_server_name(name: str, host: dict, connection_type: str) -> str:
    """Returns the name backed-up hosts use to reach vault host `name`."""
    if host["vault"]["server_name"]:
        return host["vault"]["server_name"]
    if connection_type in sandbox_state.SANDBOX_CONNECTIONS:
        return name
    return host["address"] or host["ssh"]["host"]


def is_address(name: str) -> bool:
    try:
        ip_address(name)
    except ValueError:
        return False
    return True


def databases_served(name: str, hosts: dict[str, dict]) -> list[str]:
    """Returns the databases postgres host `name` serves to the environment's apps."""
    if "postgres" not in hosts[name]["roles"]:
        return []
    served = set()
    for client_name, client in hosts.items():
        if "app" not in client["roles"]:
            continue
        database = client["app"]["database"]
        if database["host"] == name or (database["host"] == "localhost" and client_name == name):
            served.add(database["name"])
    return sorted(served)


def jobs(host: dict, databases: list[str]) -> list[dict]:
    """Returns the backup jobs of a host: one per database it serves, then the files job."""
    if not is_backed_up(host):
        return []
    settings = host["backup"]
    result = [
        {
            "name": f"db-{database}",
            "kind": "db",
            "database": database,
            "schedule": settings["database"]["schedule"],
            "ping_url": settings["database"]["ping_url"],
        }
        for database in databases
    ]
    paths = list(dict.fromkeys([*settings["files"]["paths"], *_data_dirs(host)]))
    files_job = {
        "name": "files",
        "kind": "files",
        "paths": paths,
        "schedule": settings["files"]["schedule"],
        "ping_url": settings["files"]["ping_url"],
    }
    watched = restorable_paths(files_job)  # /etc alone (a database host): nothing to watch
    files_job["watch_seconds"] = settings["files"]["watch_seconds"] if watched else 0
    files_job["watch_paths"] = watched if files_job["watch_seconds"] else []
    result.append(files_job)
    return result


def restorable_paths(job: dict) -> list[str]:
    """Returns the paths of a files job that restore.py brings back: all but /etc, which the blueprint rebuilds."""
    return [path for path in job["paths"] if path != "/etc" and not path.startswith("/etc/")]


def _data_dirs(host: dict) -> list[str]:
    return host["app"]["data_dirs"] if "app" in host["roles"] else []


def target(name: str, hosts: dict[str, dict], connection_type: str) -> dict | None:
    """Returns where host `name` sends its snapshots: {"url": ..., "vault": vault name or ""}; None if nowhere."""
    host = hosts[name]
    if not is_backed_up(host):
        return None
    if host["backup"]["repository"]:
        return {"url": host["backup"]["repository"], "vault": ""}
    vault = vault_host(hosts)
    server_name = vault_server_name(vault, hosts[vault], connection_type)
    return {"url": f"rest:https://{server_name}:{hosts[vault]['vault']['port']}/{name}/", "vault": vault}


def secret_keys(hosts: dict[str, dict]) -> list[str]:
    """Returns the dotted secret keys backups need: restic passwords, vault logins, vault TLS."""
    keys = set()
    for name, host in hosts.items():
        if is_backed_up(host):
            keys.add(f"restic_passwords.{name}")
        if uses_vault(host):
            keys.add(f"vault_credentials.{name}")
    if vault_host(hosts):
        keys.update({"vault_tls_certificate", "vault_tls_private_key"})
    return sorted(keys)
