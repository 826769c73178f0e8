"""The vault: restic repositories served append-only over TLS, with retention and checks run locally."""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from phoenix.backup_plan import parse_duration
from phoenix.remote.vault import SETTINGS_PATH
from roles import phoenix_tools, timers
from roles.operations import (
    managed_directory,
    packages_installed,
    secret_file,
    service_running_or_restarted,
    system_account,
    template_file,
)

USER = "phoenix-vault"
PACKAGES = ["rclone", "restic"]
CONFIG_DIRECTORY = posixpath.dirname(SETTINGS_PATH)  # /etc/phoenix-vault
TASKS = {  # unit phoenix-vault-<task>: (its schedule's option, description, phoenix-vault arguments)
    "check": ("check_schedule", "integrity check; marks runs verified", "check"),
    "verify": ("verify_schedule", "new runs against their manifests, minutes after they land", "check --new"),
    "retain": ("retention_schedule", "retention: logged dry run, forget, prune", "retain --scheduled"),
}


def htpasswd(clients: list[dict], secrets) -> str:
    """Returns the htpasswd file of the clients' logins ({SHA} hashes of long random passwords)."""
    lines = []
    for client in clients:
        password = secrets.get(f"vault_credentials.{client['name']}").encode()
        lines.append(f"{client['name']}:{{SHA}}{base64.b64encode(hashlib.sha1(password).digest()).decode()}")
    return "\n".join(lines) + "\n"


def config_text(vault: dict, clients: list[dict], secrets) -> str:
    """Returns vault.json for phoenix-vault: repositories' passwords and the retention policy."""
    retention = dict(vault["retention"])
    retention["keep_within_seconds"] = int(parse_duration(retention.pop("keep_within")).total_seconds())
    config = {
        "user": USER,
        "data_dir": vault["data_dir"],
        "clients": {client["name"]: secrets.get(f"restic_passwords.{client['name']}") for client in clients},
        "retention": retention,
        "check_read_data_subset": vault["check_read_data_subset"],
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


@deploy("Vault")
def apply() -> None:
    vault = host.data.vault
    clients = host.data.vault_clients
    secrets = host.data.secrets
    packages_installed(name="Install rclone and restic", packages=PACKAGES)
    system_account(name=f"Vault user {USER}", user=USER, home=vault["data_dir"], shell="/usr/sbin/nologin")
    for directory in ("", "/repos", "/state", "/log"):
        path = vault["data_dir"] + directory
        managed_directory(name=f"Vault directory {path}", path=path, user=USER, group=USER, mode="0750")
    managed_directory(name="Vault config directory", path=CONFIG_DIRECTORY, user="root", group=USER, mode="0750")
    phoenix_tools.apply()
    secured = [
        secret_file(name="Vault TLS certificate", path=f"{CONFIG_DIRECTORY}/tls.crt",
                    content=secrets.get("vault_tls_certificate"), group=USER, mode="0644"),
        secret_file(name="Vault TLS key", path=f"{CONFIG_DIRECTORY}/tls.key",
                    content=secrets.get("vault_tls_private_key"), group=USER, mode="0640"),
        secret_file(name="Vault client logins (htpasswd)", path=f"{CONFIG_DIRECTORY}/htpasswd",
                    content=htpasswd(clients, secrets), group=USER, mode="0640"),
    ]  # fmt: skip
    secret_file(
        name="Vault settings and repository passwords",
        path=SETTINGS_PATH,  # where phoenix-vault reads it
        content=config_text(vault, clients, secrets),
        group=USER,
        mode="0640",
    )
    repositories = f"{vault['data_dir']}/repos"
    missing = [c["name"] for c in clients if not host.get_fact(File, path=f"{repositories}/{c['name']}/config")]
    if missing:
        server.shell(name=f"Create repositories: {', '.join(missing)}", commands=["/usr/local/sbin/phoenix-vault init"])
    _server_unit(vault, restart=any_changed(*secured))
    for task, (schedule_key, description, command) in TASKS.items():
        _task_units(task, vault[schedule_key], description, command)


def _server_unit(vault: dict, restart) -> None:
    unit = template_file(
        name="Vault service unit (rclone serve restic --append-only)",
        src="templates/vault/etc/systemd/system/phoenix-vault.service.j2",
        dest=f"{timers.UNIT_DIRECTORY}/phoenix-vault.service",
        mode="0644",
        vault=vault,
        service_user=USER,  # `user` would set the unit file's owner
        config_dir=CONFIG_DIRECTORY,
    )
    systemd.daemon_reload(name="Reload units for phoenix-vault", _if=unit.did_change)
    service_running_or_restarted(
        "phoenix-vault",
        lambda: unit.did_change() or restart(),
        running_name="Vault running",
        restart_name="Restart the vault",
    )
    server.shell(
        name="Wait until the vault answers",
        commands=[_wait_for_port(vault["port"])],
        _if=lambda: unit.did_change() or restart(),
    )


def _task_units(task: str, schedule: str, description: str, command: str) -> None:
    timers.scheduled_service(
        f"phoenix-vault-{task}",
        service_template="templates/vault/etc/systemd/system/phoenix-vault-task.service.j2",
        timer_template="templates/vault/etc/systemd/system/phoenix-vault-task.timer.j2",
        schedule=schedule,
        task=task,
        description=description,
        command=command,
        service_user=USER,
    )


def _wait_for_port(port: int, seconds: int = 20) -> str:
    return (
        f"for i in $(seq {seconds * 4}); do curl -sk -o /dev/null https://127.0.0.1:{port}/ && exit 0; sleep 0.25;"
        f" done; echo 'the vault did not listen on port {port} within {seconds}s' >&2; exit 1"
    )
