"""`phoenix runbook inventories/<env>.py [--html FILE]`: the operator's runbook, generated from the inventory.

Every host and what it runs; every backup job, what it holds, when it runs, where it goes, how long
the vault keeps it and where its keys live; the exact recovery commands for this environment; and
how to get the data back by hand with stock restic, Barman and PostgreSQL's tools when Phoenix itself is
unavailable. Each command is built here once, by the function that the Markdown prints it with
(`replace_server`, `upgrade`, `drill`, `unpin` ..., `manual_database_restore`, `manual_files_restore`,
`manual_archive_restore`), and the end-to-end tests run those functions' commands against the sandbox,
so the runbook cannot rot.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from phoenix import archive_plan, backup_plan, physical_restore
from phoenix.commands import barman
from phoenix.inventory import Environment
from phoenix.remote.backup_host import SETTINGS_PATH as HOST_SETTINGS
from phoenix.remote.vault import SETTINGS_PATH as VAULT_SETTINGS

PYINFRA = ".venv/bin/pyinfra"
PHOENIX = ".venv/bin/phoenix"
# the placeholders the printed runbook shows where the operator fills in a value
HOST, RUN, MOMENT, VERSION, REASON = "HOST", "RUN", "2026-11-20 18:00", "VERSION", "why it may go"
PINNED_RUN = "PINNED_RUN"
# the by-hand recovery's moment has its zone: PostgreSQL reads a time without one in its own time zone
ARCHIVE_MOMENT = f"{MOMENT}:00+00:00"


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
             "restore it (the app must be stopped), then refresh the planner's statistics; pg_restore --clean"
             " replaces only what the dump holds, so tables made after the run (by a newer release) stay: to"
             f" replace the database exactly, run `runuser -u postgres -- dropdb {shlex.quote(target)}` before step 3"),
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


def manual_archive_restore(environment: Environment, server: str, moment: str = "", archive: str = "") -> list[Step]:
    """Returns the by-hand steps that bring archived PostgreSQL host `server` back from the vault's Barman as it
    was at `moment` (a time with its zone; empty: the newest point the vault holds), over its data directory,
    with stock Barman, tar and PostgreSQL's tools: `barman recover` into a directory on the vault, with the WAL
    streamed but not archived yet, packed into `archive` (default /root/<server>-data.tar), copied to the host and
    unpacked there as PostgreSQL's data directory, which replays the WAL and opens on a new timeline; then
    Barman's WAL stream follows it there."""
    vault = backup_plan.vault_host(environment.hosts)
    version = environment.hosts[server]["postgres"]["version"]
    staging = physical_restore.staging_directory(server)
    archive = archive or f"/root/{server}-data.tar"
    data = physical_restore.data_directory(version)
    service = physical_restore.service_name(version)
    in_recovery = "runuser -u postgres -- psql -XtAc 'SELECT pg_is_in_recovery()'"
    # the newest timeline: after an earlier recovery the server writes on a later one than its base backup's
    target = ["--target-tli", "latest"]
    if moment:
        target += ["--target-time", moment, "--target-action", "promote"]
        recover = Step(
            vault,
            barman("recover", *target, server, "latest", staging),
            f"recover the newest base backup into {staging}, to replay the WAL up to the moment (with its"
            " zone), then promote; if Barman answers that the target time is before the backup end time,"
            " put the id of the newest backup that ended before the moment (step 1) in place of latest;"
            " so too if PostgreSQL later says the timeline is not a child of this server's history (a base backup"
            " taken before an earlier point-in-time recovery, on the timeline it left)",
        )
    else:
        # without a target Barman leaves a crash recovery on the base backup's timeline, which would write again
        # where the old server's stream is: archive recovery to the end of the WAL promotes onto a new timeline
        recover = Step(
            vault,
            f"{barman('recover', *target, server, 'latest', staging)}"
            f" && {physical_restore.promote_at_the_end_command(staging)}",
            f"recover the newest base backup into {staging}, to replay all the WAL, then promote (if PostgreSQL"
            " later says the timeline is not a child of this server's history, that base backup was taken before"
            " an earlier point-in-time recovery, on the timeline it left: put the id of the newest one that ended"
            " before that recovery's target in place of latest)",
        )
    held = physical_restore.held_wal_directory(staging)
    return [
        Step(vault, barman("list-backups", server), f"list {server}'s base backups (newest first)"),
        Step(vault, physical_restore.hold_streamed_wal_command(server, held),
             f"copy the WAL Barman has streamed but not archived yet (its newest segments, and the one being"
             f" written, .partial) into {held}, before the recovery: a segment barman cron archives meanwhile is"
             " then in the one or the other"),
        recover,
        Step(vault, physical_restore.add_held_wal_command(held, staging),
             f"move that WAL into {staging}/pg_wal: PostgreSQL replays it after the archive's"),
        Step(vault, f"tar -C {staging} -cf {archive} . && rm -rf {staging}",
             f"pack the recovered data directory, then copy {archive} from {vault} to {server} (scp)"),
        Step(server, f"systemctl stop {service} && mv {data} {data}.before-recovery-$(date +%Y%m%d%H%M%S)",
             "stop PostgreSQL (the apps that use it fail until it is back) and move its data directory aside"
             " (remove that copy once the recovered data are checked)"),
        Step(server, f"mkdir {data} && tar -xf {archive} -C {data} && chown -R postgres:postgres {data}"
                     f" && chmod 0700 {data}",
             "unpack the recovered data directory in its place, owned by postgres, mode 0700"),
        Step(server, f"systemctl start {service}",
             "start PostgreSQL: it replays the WAL, then opens on a new timeline"),
        Step(server, f"while systemctl is-active --quiet {service} && [ \"$({in_recovery})\" != f ]; do sleep 2;"
                     f" done; {in_recovery}",
             "wait until the recovery has ended: prints f. If PostgreSQL stopped instead,"
             f" {physical_restore.log_file(version)} says why, and the data directory moved aside can go back"),
        Step(vault, f"{barman('receive-wal', '--stop', server)}; {barman('receive-wal', '--reset', server)}",
             f"point Barman's WAL stream at the recovered server's new timeline: stop the stream (\"no such"
             " process\" is fine) and restart it from the server's current WAL file (if Barman answers \"Process"
             " is still running\", run this line again); within a minute barman cron streams again, and"
             f" `{barman('check', server)}` says receive-wal running: OK"),
    ]  # fmt: skip


def _owner(environment: Environment, client: str, database: str) -> str:
    """Returns the login role that owns `database`: the user of the app that uses it, else postgres."""
    for host in environment.hosts.values():
        settings = host.get("app", {}).get("database") or {}
        if "app" in host["roles"] and settings.get("name") == database:
            return settings["user"]
    return "postgres"


def _code(commands: list[list[str]]) -> list[str]:
    return ["", *(f"    {command_line(command)}" for command in commands), ""]


def command_line(command: list[str]) -> str:
    """Given a command's words, returns it as the runbook prints it (one shell line)."""
    return shlex.join(command)


def _pyinfra(environment: Environment, entry_point: str, *arguments: str) -> list[str]:
    return [PYINFRA, str(environment.path.with_suffix(".py")), entry_point, *arguments]


def _phoenix(environment: Environment, verb: str, *arguments: str) -> list[str]:
    return [PHOENIX, verb, str(environment.path.with_suffix(".py")), *arguments]


def replace_server(environment: Environment, host: str) -> list[str]:
    """Returns the command that rebuilds lost server `host` and restores its newest data (as root over SSH:
    the new box has no admin user yet)."""
    root = ["--data", "ssh_user=root"] if environment.over_ssh else []
    return _pyinfra(environment, "restore.py", "--limit", host, *root)


def restore_to_moment(environment: Environment, host: str = HOST, moment: str = MOMENT) -> list[str]:
    """Returns the command that restores `host`'s newest complete runs at or before `moment`, over its data."""
    return _pyinfra(environment, "restore.py", "--limit", host, "--data", f"at={moment}", "--data", "force_restore=yes")


def restore_run(environment: Environment, host: str = HOST, run: str = RUN) -> list[str]:
    """Returns the command that restores run (or snapshot) `run` onto `host`, over its data."""
    return _pyinfra(
        environment, "restore.py", "--limit", host, "--data", f"snapshot={run}", "--data", "force_restore=yes"
    )


def upgrade(environment: Environment, host: str = HOST, version: str = VERSION) -> list[str]:
    """Returns the command that upgrades the app on `host` to release `version` of its `app.releases`
    (without a version: to `app.source`)."""
    release = ["--data", f"version={version}"] if version else []
    return _pyinfra(environment, "upgrade.py", "--limit", host, *release)


def downgrade(environment: Environment, host: str = HOST, run: str = PINNED_RUN) -> list[str]:
    """Returns the command that takes `host` back to the release `app.source` names and to the data of `run`
    (the pre-upgrade run upgrade.py pinned): the data first, then the older release installed, migrated and
    started over them. deploy.py alone would meet data migrated past the older release."""
    return [*restore_run(environment, host, run), "--data", "allow_downgrade=yes"]


def drill(environment: Environment) -> list[str]:
    """Returns the command that runs a recovery drill of the environment."""
    return _phoenix(environment, "drill")


def status(environment: Environment) -> list[str]:
    """Returns the command that shows backup ages, pins and the last drill."""
    return _phoenix(environment, "status")


def report(environment: Environment) -> list[str]:
    """Returns the command that writes the dashboard page."""
    return _phoenix(environment, "report")


def pins(environment: Environment) -> list[str]:
    """Returns the command that lists the pinned runs and their reasons."""
    return _phoenix(environment, "pins")


def unpin(environment: Environment, run: str = RUN, reason: str = REASON) -> list[str]:
    """Returns the command that releases the pin of `run`, saying why."""
    return _phoenix(environment, "unpin", run, "--reason", reason)


def markdown(environment: Environment) -> str:
    """Given an environment, returns its runbook as Markdown."""
    inventory = environment.path.with_suffix(".py")
    hosts = environment.hosts
    ssh = environment.over_ssh
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
        reached = (
            f"{host['ssh']['user']}@{host['ssh']['host'] or 'its container'}:{host['ssh']['port']}"
            if ssh
            else "docker exec"
        )
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
        "Replace a lost server (point its `ssh.host` at the new box first; the new box has new host keys, which"
        " pyinfra and ssh refuse while the old ones are known: check its fingerprint in your provider's console,"
        " then `ssh-keygen -R <its address>`):",
        *_code([replace_server(environment, name) for name in backup_plan.backed_up_hosts(hosts)]),
        f"Restore to a moment, or to one run (`phoenix-vault runs --client {HOST}` on the vault lists them):",
        *_code([restore_to_moment(environment), restore_run(environment)]),
        "Upgrade the app: upgrade.py pins a backup first, and rolls back by itself (code and data) when the new"
        " release fails its checks:",
        *_code([upgrade(environment)]),
        "Go back from an upgrade on purpose: set `app.source` to the old release, then restore the run"
        " upgrade.py pinned before it (`phoenix pins` lists it) under that release:",
        *_code([downgrade(environment)]),
        "Prove recovery (weekly), see the state, and release a pin:",
        *_code([drill(environment), status(environment), report(environment), pins(environment),
                unpin(environment)]),
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
    tools = (
        "restic, Barman and PostgreSQL's tools"
        if archive_plan.archived_hosts(hosts)
        else "restic and PostgreSQL's tools"
    )
    if not vault:
        return [*lines, "No host has the vault role: restore with restic from each host's `backup.repository`."]
    lines += [
        f"Stock {tools} only. Log in to {vault} as root; every command below runs there"
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
            lines += _numbered(steps)
        if archive_plan.is_archived(hosts[name]):
            lines += _archive_section(environment, name)
    return lines


def _numbered(steps: list[Step], alternatives: list[Step] | None = None) -> list[str]:
    """The steps as a numbered Markdown list; where `alternatives` (the same procedure otherwise) has another
    command, it follows as the step's other way."""
    lines = []
    for number, (step, other) in enumerate(zip(steps, alternatives or steps, strict=True), start=1):
        lines += [f"{number}. on **{step.host}**: {step.why}", "", f"        {step.command}", ""]
        if other.command != step.command:
            lines += [f"   or, {other.why}:", "", f"        {other.command}", ""]
    return lines


def _archive_section(environment: Environment, server: str) -> list[str]:
    """The by-hand point-in-time recovery of archived PostgreSQL host `server` from the vault's Barman."""
    hosts = environment.hosts
    vault = backup_plan.vault_host(hosts)
    version = hosts[server]["postgres"]["version"]
    window = hosts[vault]["vault"]["pitr"]["window_days"]
    newest = [
        Step(step.host, step.command, f"for the newest point the vault holds, {step.why}")
        for step in manual_archive_restore(environment, server)
    ]
    return [
        "",
        f"### {server}: point-in-time recovery from the Barman archive",
        "",
        f"{vault}'s Barman archives {server}'s PostgreSQL continuously (base backups, and the WAL streamed as it is"
        f" written): these steps put it back, over {server}'s data directory, as it was at a moment of the last"
        f" {window} days (`{ARCHIVE_MOMENT}` below: put yours, with its zone) or at the newest point the vault holds."
        f" On a new machine, first install Debian's postgresql-{version} and set it up as the old one was (its"
        f" settings in /etc/postgresql/{version}/main are not in the archive; a new address goes into"
        f" /etc/barman.d/{server}.conf and ~barman/.pgpass on {vault}). Barman moves a finished WAL segment into its"
        " archive only once the next one has begun, so on a quiet server the archive alone can be hours behind:"
        f" the step after the recovery adds the segments it streamed since, the one being written too (`.partial`),"
        " as restore.py does."
        " What restore.py does beyond these steps: it streams the recovered directory to the host instead of"
        " writing it to a file on both sides, refuses to replace a database that holds tables unless told to,"
        " moves the previous data directory back by itself when PostgreSQL does not finish the recovery, and"
        " points Barman at a new address.",
        "",
        *_numbered(manual_archive_restore(environment, server, ARCHIVE_MOMENT), newest),
    ]


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
