"""`phoenix runbook inventories/<env>.py [--html FILE]`: the operator's runbook, generated from the inventory.

Every host and what it runs; every backup job, what it holds, when it runs, where it goes, how long
the vault keeps it and where its keys live; the exact recovery commands for this environment; and
how to get the data back by hand with stock restic and pg_restore when Phoenix itself is unavailable.
The by-hand commands are built here once (`manual_database_restore`, `manual_files_restore`) and an
end-to-end test runs them against the sandbox, so they cannot rot.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from phoenix import backup_plan
from phoenix.inventory import Environment

VAULT_SETTINGS = "/etc/phoenix-vault/vault.json"  # written by roles/vault.py: every client's restic password
HOST_SETTINGS = "/etc/phoenix/backup.json"  # written by roles/backup.py: the host's restic password, vault login


@dataclass(frozen=True)
class Step:
    """One command of a by-hand procedure: the host it runs on (as root) and the shell command."""

    host: str
    command: str
    why: str


# read-only: no lock file, no cache written by root into the vault user's repository
RESTIC = "restic --no-lock --no-cache"


def repository_environment(client: str, data_dir: str) -> str:
    """Returns the shell line that points stock restic at `client`'s repository on the vault itself."""
    password = f'python3 -c \'import json; print(json.load(open("{VAULT_SETTINGS}"))["clients"]["{client}"])\''
    return f'export RESTIC_REPOSITORY={data_dir}/repos/{client} RESTIC_PASSWORD="$({password})"'


def manual_database_restore(
    environment: Environment, client: str, database: str, target: str = "", dump: str = ""
) -> list[Step]:
    """Returns the by-hand steps that restore database `database` backed up by host `client` from the
    vault, with stock restic and pg_restore: dump the newest run's data on the vault, copy it to the
    database host, restore it into `target` (default: the database itself)."""
    vault = backup_plan.vault_host(environment.hosts)
    data_dir = environment.hosts[vault]["vault"]["data_dir"]
    target = target or database
    dump = dump or f"/root/{database}.dump"
    tags = f"job=db-{database},part=data"
    owner = _owner(environment, client, database)
    return [
        Step(vault, f"{repository_environment(client, data_dir)}; {RESTIC} snapshots --tag {tags}",
             "list the database's runs (newest last)"),
        Step(vault, f"{repository_environment(client, data_dir)};"
                    f" {RESTIC} dump --tag {tags} latest /{database}.dump > {dump}",
             "write the newest run's dump to a file (or put a snapshot id from the list in place of latest)"),
        Step(client, f"runuser -u postgres -- psql -tAc \"SELECT 1 FROM pg_database WHERE datname = '{target}'\""
                     f" | grep -q 1 || runuser -u postgres -- createdb -O {owner} {shlex.quote(target)}",
             f"after copying {dump} from {vault} to {client} (scp): make the database if this PostgreSQL lacks it"),
        Step(client, f"runuser -u postgres -- pg_restore --clean --if-exists --exit-on-error -d {shlex.quote(target)}"
                     f" < {dump} && runuser -u postgres -- psql -d {shlex.quote(target)} -c ANALYZE",
             "restore it (the app must be stopped), then refresh the planner's statistics"),
    ]  # fmt: skip


def manual_files_restore(environment: Environment, client: str, paths: list[str], target: str = "") -> list[Step]:
    """Returns the by-hand steps that restore a host's files job from the vault into `target` on the vault
    (default /root/restore-<host>; copy them to the host afterwards), with stock restic."""
    vault = backup_plan.vault_host(environment.hosts)
    data_dir = environment.hosts[vault]["vault"]["data_dir"]
    target = target or f"/root/restore-{client}"
    includes = " ".join(f"--include {shlex.quote(path)}" for path in paths)
    return [
        Step(vault, f"{repository_environment(client, data_dir)};"
                    f" {RESTIC} restore --tag job=files,part=data latest --target {shlex.quote(target)} {includes}",
             f"restore the newest files run under {target}; copy them to {client} (rsync -a {target}/ {client}:/)"),
    ]  # fmt: skip


def _owner(environment: Environment, client: str, database: str) -> str:
    """Returns the login role that owns `database`: the user of the app that uses it, else postgres."""
    for host in environment.hosts.values():
        settings = host.get("app", {}).get("database") or {}
        if "app" in host["roles"] and settings.get("name") == database:
            return settings["user"]
    return "postgres"


def _code(lines: list[str]) -> list[str]:
    return ["", *(f"    {line}" for line in lines), ""]


def markdown(environment: Environment) -> str:
    """Given an environment, returns its runbook as Markdown."""
    inventory = environment.path.with_suffix(".py")
    hosts = environment.hosts
    ssh = environment.connection["type"] == "ssh"
    root = " --data ssh_user=root" if ssh else ""
    vault = backup_plan.vault_host(hosts)
    lines = [
        f"# Runbook: {environment.name}",
        "",
        f"Generated from `{environment.path}` by `phoenix runbook {inventory}`; generate it again after"
        " every change to the inventory, and keep a printed copy away from the servers.",
        "",
        "## Hosts",
        "",
        "| host | reached as | runs | backs up to |",
        "|---|---|---|---|",
    ]
    for name, host in hosts.items():
        reached = f"{host['ssh']['user']}@{host['ssh']['host']}:{host['ssh']['port']}" if ssh else "docker exec"
        target = backup_plan.target(name, hosts, environment.connection["type"])
        lines.append(
            f"| {name} | {reached} | {', '.join(_runs(name, host, hosts))} | {target['url'] if target else '-'} |"
        )
    lines += [
        "",
        "## Backups",
        "",
        "| host | job | holds | schedule | alert when older than |",
        "|---|---|---|---|---|",
    ]
    for name in backup_plan.backed_up_hosts(hosts):
        for job in backup_plan.jobs(hosts[name], backup_plan.databases_served(name, hosts)):
            holds = f"database {job['database']} (pg_dump -Fc)" if job["kind"] == "db" else ", ".join(job["paths"])
            limit = f"{hosts[name]['backup']['max_age_hours']:g}h"
            lines.append(f"| {name} | {job['name']} | {holds} | `{job['schedule']}` | {limit} |")
    if vault:
        settings = hosts[vault]["vault"]
        keep = settings["retention"]
        lines += [
            "",
            f"The vault **{vault}** keeps the repositories in `{settings['data_dir']}/repos/<host>` and serves them"
            f" append-only on port {settings['port']}: a server can add snapshots, never delete them.",
            f"Retention (daily at `{settings['retention_schedule']}`): everything within {keep['keep_within']},"
            f" then {keep['daily']} daily, {keep['weekly']} weekly, {keep['monthly']} monthly; pins always; at least"
            f" {keep['minimum_verified']} verified runs per job. New runs are verified against their manifests"
            f" (`{settings['verify_schedule']}`), and {settings['check_read_data_subset']} of the data is read back"
            f" weekly (`{settings['check_schedule']}`).",
        ]
    lines += [
        "",
        "## Where the keys live",
        "",
        f"- `inventories/secrets/{environment.name}.yml.age`: every secret, encrypted with age to the keys in"
        f" `inventories/secrets/{environment.name}.recipients`; `restic_passwords.<host>` decrypts a host's"
        " backups, `vault_credentials.<host>` is its append-only vault login.",
        "- your age identity (`~/.config/phoenix/age-identity.txt`, or `PHOENIX_AGE_IDENTITY`) decrypts it:"
        " without it and without the servers, the backups cannot be read. Keep a copy off your laptop.",
        f"- on each backed-up server, `{HOST_SETTINGS}` (root, 0600) holds its own restic password and vault login;",
        f"- on the vault, `{VAULT_SETTINGS}` holds every client's restic password (the by-hand steps below use it).",
        "",
        "## Recovery with Phoenix",
        "",
        "Run from a clone of this repository on a machine that has your age identity.",
        "",
        "Replace a lost server (point its `ssh.host` at the new box first):",
        *_code([f".venv/bin/pyinfra {inventory} restore.py --limit {name}{root}"
                for name in backup_plan.backed_up_hosts(hosts)]),
        "Restore to a moment, or to one run (`phoenix-vault runs --client HOST` on the vault lists them):",
        *_code([f'.venv/bin/pyinfra {inventory} restore.py --limit HOST --data at="2026-11-20 18:00"'
                " --data force_restore=yes",
                f".venv/bin/pyinfra {inventory} restore.py --limit HOST --data snapshot=RUN --data force_restore=yes"]),
        "Roll back an upgrade: upgrade.py rolls back by itself when the new release fails its checks. To go back"
        " on purpose: set `app.source` to the old release, then",
        *_code([f".venv/bin/pyinfra {inventory} deploy.py --data allow_downgrade=yes",
                f".venv/bin/pyinfra {inventory} restore.py --limit HOST --data snapshot=PINNED_RUN"
                " --data force_restore=yes"]),
        "Prove recovery (weekly), see the state, and release a pin:",
        *_code([f".venv/bin/phoenix drill {inventory}", f".venv/bin/phoenix status {inventory}",
                f".venv/bin/phoenix report {inventory}", f".venv/bin/phoenix pins {inventory}",
                f'.venv/bin/phoenix unpin {inventory} RUN --reason "why it may go"']),
    ]  # fmt: skip
    lines += _by_hand(environment)
    return "\n".join(lines) + "\n"


def _runs(name: str, host: dict, hosts: dict) -> list[str]:
    runs = []
    for role in host["roles"]:
        if role == "app":
            database = host["app"]["database"]
            where = "its own PostgreSQL" if database["host"] in ("localhost", name) else database["host"]
            runs.append(f"the app under {host['app']['process_manager']} (database {database['name']} on {where})")
        elif role == "postgres":
            runs.append(f"PostgreSQL ({', '.join(backup_plan.databases_served(name, hosts)) or 'no app database'})")
        else:
            runs.append(role)
    return runs


def _by_hand(environment: Environment) -> list[str]:
    hosts = environment.hosts
    vault = backup_plan.vault_host(hosts)
    lines = ["", "## By hand, if Phoenix is unavailable", ""]
    if not vault:
        return [*lines, "No host has the vault role: restore with restic from each host's `backup.repository`."]
    lines += [
        f"Stock restic and PostgreSQL's tools only. Log in to {vault} as root; every command below runs there"
        " or on the host it names. A run is complete when `restic snapshots` lists both its `part=data` and its"
        " `part=manifest` snapshot (same `run=` tag); `latest` below is the newest data snapshot: if its run has"
        " no manifest, use the id of the newest complete one instead.",
    ]
    for name in backup_plan.backed_up_hosts(hosts):
        if not backup_plan.uses_vault(hosts[name]):
            continue
        for job in backup_plan.jobs(hosts[name], backup_plan.databases_served(name, hosts)):
            if job["kind"] == "db":
                steps = manual_database_restore(environment, name, job["database"])
                lines += ["", f"### {name}: database {job['database']}", ""]
            else:
                paths = backup_plan.restorable_paths(job)
                if not paths:
                    continue
                steps = manual_files_restore(environment, name, paths)
                lines += ["", f"### {name}: files ({', '.join(paths)})", ""]
            for number, step in enumerate(steps, start=1):
                lines += [f"{number}. on **{step.host}**: {step.why}", "", f"        {step.command}", ""]
    return lines


def run(inventory: str, html: str = "") -> int:
    """`phoenix runbook`: prints the runbook; with `html`, also writes it as a page."""
    from phoenix.inventory import load_environment

    text = markdown(load_environment(inventory))
    print(text, end="")
    if html:
        Path(html).write_text(html_page(text))
    return 0


def html_page(text: str) -> str:
    """Returns the runbook's Markdown as a self-contained HTML page (escaped, preformatted: nothing to fetch)."""
    from markupsafe import escape

    style = "body{font-family:system-ui,sans-serif;max-width:70rem;margin:1.5rem auto;padding:0 1rem}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Runbook</title><style>{style}'
        f"pre{{white-space:pre-wrap}}</style></head><body><pre>{escape(text)}</pre></body></html>\n"
    )
