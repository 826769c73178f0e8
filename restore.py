"""Rebuild a server and bring its data back: `pyinfra inventories/prod.py restore.py [--limit HOST]`.

    --data snapshot=ID          a run id or snapshot id (`phoenix status`); `latest` = the default
    --data at="2026-11-29 10:59:30+01:00"  point-in-time recovery to that second (UTC without an offset);
                                files from the newest complete run at or before it
    --data restore_point=NAME   point-in-time recovery to a named restore point (pg_create_restore_point)
    --data allow_older=yes      when the vault's check found the newest complete run bad, restore the
                                newest good one (refused otherwise, before anything changes)
    --data allow_missing=yes    when a job has no complete run yet (lost before its first backup), restore
                                the host's other data and leave that job's data as they are (refused otherwise)
    --data force_restore=yes    replace a database that holds data (refused otherwise)
    --data restore_report=PATH  also write the timings and what was restored as JSON ({host} in PATH: per host)

An archived PostgreSQL (postgres.archive, the default with a vault) comes back from the vault's Barman
archive, to the newest point it holds (the WAL streamed up to the disaster) or to the target given:
`barman recover` on the vault, its data directory piped through this machine into the new host. A
host without a base backup in the archive restores its newest logical dump instead (docs/backups.md).

Default for the dumps and files: each job's newest complete run (it has its manifest), verified by the vault or not yet:
its data are checked against the manifest while restoring, and a run that does not match stops
restore.py on that host before the app starts, naming the run. A run the vault found bad is never
restored silently: falling back to an older one needs allow_older=yes and is said on one line.

The order: the packages (one apt transaction), admins and sshd, the firewall, PostgreSQL and the backup
tools, then the database (pg_restore --clean --if-exists --exit-on-error, ANALYZE) and the
app's data directories at the same time, in a transient systemd unit holding the host's backup lock (a
backup timer firing meanwhile waits, so it never saves a half-restored database as the newest run), each
checked against the run's manifest, and only then the app and nginx. While the unit restores, restore.py
sets the rest of the base system and the backup timers, and installs the app's and nginx's Debian packages
and, on a host running no release yet, the app's release venv; nothing is configured or started for the
app before the data are checked. /etc is in the backups but not restored: the blueprint rebuilds it from
code. The host restores with its own vault login, which can read and add but never delete.
"""

import sys

from pyinfra import host
from pyinfra.operations import files, python, server

from phoenix import backup_plan, physical_restore, restore_plan, restore_report
from phoenix.commands import (
    make_all_at_once_command,
    make_background_restore_command,
    make_background_restore_wait_command,
    make_holding_backup_lock_command,
    make_restore_db_command,
    make_restore_files_command,
)
from phoenix.errors import PhoenixError, refuse
from roles import app, backup, base, firewall, host_packages, nginx, postgres, tls, vault
from roles.operations import packages_installed

NAME = host.data.phoenix_host
try:
    PHYSICAL = restore_plan.physical_for_host(host.data)
    CHOSEN = restore_plan.for_host(host.data, physical=PHYSICAL is not None)
except PhoenixError as error:
    refuse(f"phoenix: restore.py stopped before changing anything on {NAME}:\n{error}")
for fallback in [run["fallback"] for run in CHOSEN.values() if run.get("fallback")]:
    print(f"phoenix: {fallback}: restoring that one (allow_older=yes)", file=sys.stderr)
MISSING = {job: run["missing"] for job, run in CHOSEN.items() if run.get("missing")}
for line in MISSING.values():
    print(f"phoenix: {line}: restoring {NAME}'s other data without it (allow_missing=yes)", file=sys.stderr)
FORCE = bool(host.data.run_flags["force_restore"])
ARCHIVE_STREAMS: dict = {}  # host -> its archive restore while it runs (physical_restore: VaultSide, Streaming, follow)
RECOVERED: dict[str, dict] = {}  # host -> what the archive's recovery reached (physical_restore.finish)
clock = restore_plan.Clock()

python.call(name="Restore: start the clock", function=clock.start, host_name=NAME)
if PHYSICAL is not None:  # the vault recovers into its staging directory while this host is provisioned
    python.call(
        name=f"Recover the vault's archive: base backup {PHYSICAL.backup_id}, to {PHYSICAL.target()}",
        function=physical_restore.prepare,
        host_name=NAME,
        plan=PHYSICAL,
        data=host.data,
        streams=ARCHIVE_STREAMS,
    )
base.before_data(other_roles_packages=host_packages.provision(host.data))
firewall.apply()
if "postgres" in host.data.roles:
    postgres.apply()
if "vault" in host.data.roles:
    vault.apply()  # nothing to restore there: its data are the backups
if host.data.backup_jobs:
    backup.tools_and_settings()
python.call(name="Restore: time the provisioning", function=clock.lap, host_name=NAME, step="provision")

if PHYSICAL is not None:  # streams while the app's packages and release install, as the dump's unit below
    python.call(
        name="Start restoring PostgreSQL from the vault's archive",
        function=physical_restore.start,
        host_name=NAME,
        plan=PHYSICAL,
        data=host.data,
        force=FORCE,
        streams=ARCHIVE_STREAMS,
    )
jobs_to_restore = [
    job for job in restore_plan.restored_jobs(host.data.backup_jobs, PHYSICAL is not None) if job["name"] not in MISSING
]
database_jobs = [job for job in jobs_to_restore if job["kind"] == "db"]
file_jobs = [job for job in jobs_to_restore if job["kind"] == "files"]
if file_jobs and "app" in host.data.roles:
    app.system_user(host.data.app)  # the restored files belong to it
owner = host.data.app["name"] if "app" in host.data.roles else None
restore_lines = {
    job["name"]: make_restore_db_command(job["name"], CHOSEN[job["name"]]["run"], FORCE) for job in database_jobs
}
for job in file_jobs:
    paths = backup_plan.restorable_paths(job)
    restore_lines[job["name"]] = make_restore_files_command(CHOSEN[job["name"]]["run"], paths, owner)
if restore_lines:  # each job restores its own data, all at once, in a unit of their own while the release installs
    runs = ", ".join(f"{job} from run {restore_plan.title(CHOSEN[job])}" for job in restore_lines)
    restore_all = make_all_at_once_command(list(restore_lines.values()))
    lock_wait = host.data.backup["lock_wait_seconds"]  # the unit holds the backup lock: a timer firing waits for it
    server.shell(
        name=f"Start restoring {runs}",
        commands=[make_background_restore_command(make_holding_backup_lock_command(restore_all, lock_wait))],
    )
# meanwhile, what does not touch the data: nothing of the app is configured or started before they are checked
base.settings()
if host.data.backup_jobs:
    backup.schedules()  # a timer firing while the unit restores waits for its lock
app_step_packages = host_packages.app_step(host.data)
if app_step_packages:
    packages_installed(name="Install the app's and nginx's packages", packages=app_step_packages)
server_state = app.install_release() if "app" in host.data.roles else None  # apply() below reuses it
if "nginx" in host.data.roles:
    tls.apply()
if PHYSICAL is not None:
    python.call(
        name="Wait for the archive's restore",
        function=physical_restore.finish,
        host_name=NAME,
        plan=PHYSICAL,
        data=host.data,
        streams=ARCHIVE_STREAMS,
        results=RECOVERED,
    )
if restore_lines:
    server.shell(name="Wait for the data restore, and check it", commands=[make_background_restore_wait_command()])
python.call(name="Restore: time the data restore", function=clock.lap, host_name=NAME, step="restore data")

if "app" in host.data.roles:
    # the restored database may be older than the release the blueprint installs: migrate it again
    files.file(name="Migrate the restored data", path=app.paths(host.data.app)["migrated_marker"], present=False)
    restored_paths = [path for job in file_jobs for path in backup_plan.restorable_paths(job)]
    if app.code_restored_over(host.data.app, restored_paths):  # check the release again, over what came back
        server_state = server_state._replace(release=None)
    app.apply(server_state)
if "nginx" in host.data.roles:
    nginx.apply()
python.call(name="Restore: time the app start", function=clock.lap, host_name=NAME, step="start the app")
if PHYSICAL is not None:
    python.call(
        name="Wait until the vault's WAL stream follows the restored server",
        function=physical_restore.followed,
        host_name=NAME,
        streams=ARCHIVE_STREAMS,
        results=RECOVERED,
    )
python.call(
    name="Restore: report",
    function=restore_report.report,
    host_name=NAME,
    chosen={job["name"]: CHOSEN[job["name"]] for job in database_jobs + file_jobs},
    report_path=host.data.run_flags["restore_report"] or "",
    clock=clock,
    recovered=RECOVERED,
    missing=MISSING,
)
