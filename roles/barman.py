"""The vault's continuous archive of PostgreSQL: Barman pulls base backups and streams WAL from each
archived database host (phoenix/archive_plan.py says which and how)."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import server

from phoenix import archive_plan
from phoenix.commands import barman, make_first_base_backup_command
from roles import timers
from roles.operations import managed_directory, packages_installed, put_file, secret_file

HOME = "/var/lib/barman"  # Debian's home of the barman user: the base backups and WAL live here
TASKS = {  # unit phoenix-barman-<task>: (description, command, schedule or None: the vault's pitr option)
    "cron": ("WAL streaming, archiving and retention (barman cron)", "/usr/bin/barman -q cron", "*:*:00"),
    "backup": ("base backups of every archived host", "/usr/bin/barman -q backup all", None),
}


def packages(data) -> list[str]:
    """Given a vault's data, the Debian packages the Barman role installs."""
    versions = sorted({server_["version"] for server_ in data.archive_servers})
    # zstd compresses the restore stream (physical_restore.COMPRESS)
    return ["barman", "zstd", *(f"postgresql-client-{version}" for version in versions)]


@deploy("Archive (Barman)")
def apply() -> None:
    vault = host.data.vault
    servers = host.data.archive_servers
    packages_installed(
        name="Install Barman, PostgreSQL's client tools (pg_basebackup, pg_receivewal) and zstd",
        packages=packages(host.data),
    )
    put_file(
        name="Barman settings (/etc/barman.conf)",
        src=StringIO(archive_plan.global_config(HOME)),
        dest="/etc/barman.conf",
        mode="0644",
    )
    managed_directory(name="Barman servers directory", path=archive_plan.BARMAN_CONFIG_DIRECTORY, mode="0755")
    managed_directory(name="Barman home", path=HOME, user="barman", group="barman", mode="0750")
    managed_directory(name="Barman log directory", path="/var/log/barman", user="barman", group="barman", mode="0750")
    secret_file(
        name="Barman's passwords for the archived hosts (.pgpass)",
        path=f"{HOME}/.pgpass",
        content=archive_plan.pgpass(servers, host.data.secrets),
        user="barman",
        group="barman",
        mode="0600",
    )
    for archived in servers:
        put_file(
            name=f"Barman server {archived['name']}",
            src=StringIO(archive_plan.server_config(archived["name"], archived["address"], vault, archived["version"])),
            dest=f"{archive_plan.BARMAN_CONFIG_DIRECTORY}/{archived['name']}.conf",
            mode="0644",
        )
    for task, (description, command, schedule) in TASKS.items():
        timers.scheduled_service(
            f"phoenix-barman-{task}",
            service_template="templates/vault/etc/systemd/system/phoenix-barman.service.j2",
            timer_template="templates/vault/etc/systemd/system/phoenix-barman.timer.j2",
            schedule=schedule or vault["pitr"]["base_backup_schedule"],
            description=description,
            command=command,
            keep_children=task == "cron",
            accuracy="1s" if task == "cron" else "",
        )
    for archived in servers:
        name = archived["name"]
        backups = host.get_fact(Command, command=f"{barman('list-backups', '--minimal', name)} 2>/dev/null || true")
        if not backups:
            server.shell(
                name=f"First base backup of {name} (the archive starts here)",
                commands=[make_first_base_backup_command(name, archive_plan.conninfo(archived["address"]), HOME)],
            )
