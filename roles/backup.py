"""Scheduled off-site backups of a data host: restic, a systemd service and timer per job."""

from __future__ import annotations

import json
import posixpath
from io import StringIO
from urllib.parse import quote

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FindFiles
from pyinfra.operations import systemd

from phoenix.commands import make_backup_run_command
from phoenix.errors import PhoenixError
from phoenix.remote.backup import TRIGGERS
from phoenix.remote.backup_host import SETTINGS_PATH
from roles import phoenix_tools, timers
from roles.operations import managed_directory, managed_file, packages_installed, put_file, secret_file

CONFIG_PATH = SETTINGS_PATH  # where phoenix-backup reads it
CONFIG_DIRECTORY = posixpath.dirname(CONFIG_PATH)  # /etc/phoenix
VAULT_CERTIFICATE = f"{CONFIG_DIRECTORY}/vault.crt"
STATE_DIRECTORY = "/var/lib/phoenix/backup"
PACKAGES = ["restic"]


def repository_url(target: dict, host_name: str, secrets) -> str:
    """Returns the restic repository URL, with this host's vault login in it when the target is the vault."""
    if not target["vault"]:
        return target["url"]
    password = quote(secrets.get(f"vault_credentials.{host_name}"), safe="")
    scheme, rest = target["url"].split("://", 1)
    return f"{scheme}://{host_name}:{password}@{rest}"


def config_text(data) -> str:
    """Returns /etc/phoenix/backup.json: everything phoenix-backup needs, passwords included (mode 0600)."""
    name = data.phoenix_host
    target = data.backup_target
    config = {
        "host": name,
        "repository": repository_url(target, name, data.secrets),
        "password": data.secrets.get(f"restic_passwords.{name}"),
        "cacert": VAULT_CERTIFICATE if target["vault"] else "",
        "environment": data.secrets.get_mapping(f"backup_environment.{name}"),
        "lock_wait_seconds": data.backup["lock_wait_seconds"],
        "state_dir": STATE_DIRECTORY,
        "jobs": data.backup_jobs,
        "stand_in": data.stand_in,
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def now_command(trigger: str, pin: str) -> str:
    """Returns the shell command that runs every backup job of a host now (backup.py)."""
    if trigger not in TRIGGERS:
        raise PhoenixError(f"--data backup_trigger={trigger!r}: expected one of {', '.join(TRIGGERS)}")
    return (
        "command -v phoenix-backup >/dev/null"
        " || { echo 'phoenix-backup is not installed here: run deploy.py first' >&2; exit 2; };"
        f" {make_backup_run_command(trigger, pin, records=True)}"
    )


def unit_name(job: dict) -> str:
    return f"phoenix-backup-{job['name']}"


def watch_unit_name(job: dict) -> str:
    return f"phoenix-backup-{job['name']}-watch"


def unit_names(job: dict) -> list[str]:
    """Returns the names of the job's service and timer pairs: its schedule's, and its watch's when it has one."""
    return [unit_name(job)] + ([watch_unit_name(job)] if job.get("watch_seconds") else [])


def timer_units(job: dict) -> list[str]:
    """Returns the job's timer units (upgrade.py pauses them)."""
    return [f"{name}.timer" for name in unit_names(job)]


def watch_calendar(seconds: int) -> str:
    """Returns the OnCalendar expression that elapses every `seconds` (a divisor of 60, or whole minutes
    dividing 60: the schema's choices)."""
    if seconds < 60:
        return f"*:*:0/{seconds}"
    return f"*:0/{seconds // 60}:00"


@deploy("Backups")
def apply() -> None:
    _tools_and_settings()
    _schedules()


@deploy("Backups")
def tools_and_settings() -> None:
    """restic, phoenix-backup and the host's backup settings: what a restore needs (restore.py runs schedules()
    while the data restore)."""
    _tools_and_settings()


@deploy("Backups")
def schedules() -> None:
    """Each job's service and timer, and the removal of those of jobs the inventory no longer has."""
    _schedules()


def _tools_and_settings() -> None:
    packages_installed(name="Install restic", packages=PACKAGES)
    phoenix_tools.apply()
    managed_directory(name="Backup config directory", path=CONFIG_DIRECTORY, mode="0755")
    managed_directory(name="Backup status directory", path=STATE_DIRECTORY, mode="0755")
    if host.data.backup_target["vault"]:
        put_file(
            name="The vault's certificate (restic trusts exactly this one)",
            src=_text(host.data.secrets.get("vault_tls_certificate")),
            dest=VAULT_CERTIFICATE,
            mode="0644",
        )
    secret_file(name="Backup settings and passwords", path=CONFIG_PATH, content=config_text(host.data), mode="0600")


def _schedules() -> None:
    if host.data.stand_in:
        return  # a drill's or dev copy's host restores; it never backs up into the real host's repository
    wanted = set()
    for job in host.data.backup_jobs:
        wanted.update(unit_names(job))
        _job_units(job)
    _remove_old_jobs(wanted)


def _job_units(job: dict) -> None:
    timers.scheduled_service(
        unit_name(job),
        service_template="templates/backup/etc/systemd/system/phoenix-backup.service.j2",
        timer_template="templates/backup/etc/systemd/system/phoenix-backup.timer.j2",
        schedule=job["schedule"],
        job=job,
    )
    if job.get("watch_seconds"):
        timers.scheduled_service(
            watch_unit_name(job),
            service_template="templates/backup/etc/systemd/system/phoenix-backup-watch.service.j2",
            timer_template="templates/backup/etc/systemd/system/phoenix-backup-watch.timer.j2",
            schedule=watch_calendar(job["watch_seconds"]),
            job=job,
        )


def _remove_old_jobs(wanted: set[str]) -> None:
    """Stops and removes the timers of jobs the inventory no longer has."""
    present = host.get_fact(FindFiles, path=timers.UNIT_DIRECTORY, fname="phoenix-backup-*.timer", maxdepth=1) or []
    for path in sorted(present):
        name = path.rsplit("/", 1)[-1].removesuffix(".timer")
        if name in wanted:
            continue
        systemd.service(name=f"Stop {name}.timer", service=f"{name}.timer", running=False, enabled=False)
        for suffix in (".timer", ".service"):
            managed_file(name=f"Remove {name}{suffix}", path=f"{timers.UNIT_DIRECTORY}/{name}{suffix}", present=False)
        systemd.daemon_reload(name=f"Reload units after removing {name}")


def _text(content: str) -> StringIO:
    return StringIO(content if content.endswith("\n") else content + "\n")
