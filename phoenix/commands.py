"""The command lines Phoenix sends to its servers, each built in one place (pure functions, no I/O).

Every caller that runs `phoenix-backup`, asks `phoenix-vault` or writes a marker file builds the
line here, so the text a server receives is written once and unit-tested once
(tests/unit/test_commands.py). Values are quoted for the remote shell; a value made only of
letters, digits and `@%+=:,./-_` (run ids, job names, paths, SHA-256 sums) is sent as it is.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime

from phoenix.remote.backup import LOCK_PATH

BACKUP_STATUS_COMMAND = "phoenix-backup status"  # the newest result of each job, as JSON
BACKUP_LOCK = str(LOCK_PATH)  # one backup or data restore at a time
REFUSED_STATUS = 3  # a restore line's exit status when it refused before changing anything


def make_backup_run_command(trigger: str | None = None, pin: str = "", records: bool = False) -> str:
    """Given a trigger (scheduled, manual, pre-upgrade; None: the program's default), a pin reason (blank: no pin)
    and whether the output ends with the runs' status records (read them with split_run_records), returns the
    line that runs every backup job of a host now."""
    line = "phoenix-backup run all"
    if trigger is not None:
        line += f" --trigger {shlex.quote(trigger)}"
    if pin.strip():
        line += f" --pin {shlex.quote(pin)}"
    return line + (" --records" if records else "")


def split_run_records(stdout: str) -> tuple[list[str], dict[str, dict]]:
    """Given the output of a `--records` backup run, returns its report lines and each job's final status record
    (none when the program stopped before its last line)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if lines and lines[-1].startswith("{"):
        try:
            return lines[:-1], json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    return lines, {}


def make_restore_db_command(job: str, run: str, force: bool) -> str:
    """Given a database job, a run id and whether a database holding data may be replaced, returns the line
    that restores that job's database from the run."""
    return f"phoenix-backup restore-db {shlex.quote(job)} --run {shlex.quote(run)}" + (" --force" if force else "")


def make_restore_files_command(run: str, paths: Sequence[str], owner: str | None = None) -> str:
    """Given a run id, the paths to bring back and the user who owns them (None: as backed up), returns the
    line that restores those paths from the run."""
    line = f"phoenix-backup restore-files --run {shlex.quote(run)} --paths {shlex.join(paths)}"
    return line + (f" --owner {shlex.quote(owner)}" if owner else "")


def make_remote_shell_argv(prefix: Sequence[str], line: str, ssh: bool) -> list[str]:
    """Given the argv prefix that reaches a host (vault_client.remote_command), a shell line and whether that prefix
    is SSH, returns the argv running the line there: SSH hands the remote shell one string, so the line is quoted
    for it; docker exec takes the arguments as they are."""
    return [*prefix, *(["bash -c " + shlex.quote(line)] if ssh else ["bash", "-c", line])]


def make_marker_write_command(marker: str, value: str, mode: str | None = "0644") -> str:
    """Given a marker file, the value it must hold and its mode (None: leave the mode as it is), returns the
    line that writes the value and a newline to it."""
    line = f"printf '%s\\n' {shlex.quote(value)} > {shlex.quote(marker)}"
    return line + (f" && chmod {mode} {shlex.quote(marker)}" if mode else "")


def make_private_file_write_command(path: str, text: str) -> str:
    """Given a path and its text, returns the line that writes the text there (mode 0600, its directory made)
    whole or not at all: into a temporary file first, renamed over the path, so that a reader (or the next run
    after a kill) never finds half of it."""
    target = shlex.quote(path)
    temporary = shlex.quote(f"{path}.tmp")
    return (
        f"mkdir -p {shlex.quote(posixpath.dirname(path))} && umask 077"
        f" && printf '%s' {shlex.quote(text)} > {temporary} && mv -f {temporary} {target}"
    )


def make_vault_pin_arguments(run: str, reason: str, by: str, client: str | None = None) -> list[str]:
    """Given a run (id or snapshot id), why, who asks and the client it belongs to (None: the vault finds it),
    returns the `phoenix-vault` arguments that pin the run."""
    return ["pin", run, *(["--client", client] if client else []), "--reason", reason, "--by", by]


# a Barman cron run now: it starts any stream not running
BARMAN_CRON_NOW = "systemctl start phoenix-barman-cron.service"


def barman(*arguments: str) -> str:
    """Given barman's arguments, returns the line that runs it as the barman user (its files stay its own)."""
    return f"runuser -u barman -- barman {shlex.join(arguments)}"


def make_first_base_backup_command(
    server: str, conninfo: str, barman_home: str, tries: int = 60, wait_seconds: int = 300
) -> str:
    """Given an archived host, Barman's connection string to it and Barman's home, returns the line that starts
    its WAL stream (creating the replication slot), closes WAL segments until the archive holds a complete one
    (Barman 3.4's switch-wal wants a superuser; its role may checkpoint and switch), then takes the first
    base backup, and prints `barman check` when that fails. Set-up only: on a user's timeline archive_timeout
    closes the segments."""
    cron = BARMAN_CRON_NOW
    switch = (
        f"runuser -u barman -- psql -X -q {shlex.quote(conninfo)} -c CHECKPOINT -c 'SELECT pg_switch_wal()' >/dev/null"
    )
    # Barman's own test before a backup: a segment is listed in xlog.db once archived (while it is being
    # compressed it already sits in wals/ as a .tmp file, and `barman backup` would still refuse)
    archived = f"test -s {shlex.quote(f'{barman_home}/{server}/wals/xlog.db')}"
    said = f"echo 'barman backup {server} failed; barman check {server} says:' >&2"
    check = f"{{ {said}; {barman('check', server)} >&2; exit 1; }}"
    return (
        f"cd /tmp && {cron} && archived=no && for try in $(seq {tries}); do {switch}; sleep 2; {cron};"
        f" if {archived}; then archived=yes; break; fi; done"
        f" && {{ [ $archived = yes ] || {{ echo 'no WAL from {server} reached the archive' >&2; exit 1; }}; }}"
        f" && {{ {barman('backup', '--wait', '--wait-timeout', str(wait_seconds), server)} || {check}; }}"
    )


def restore_point_name(host: str, started: str) -> str:
    """Given the upgraded host and the upgrade's start (ISO time), returns the name of its restore point."""
    stamp = "".join(character for character in started[:19] if character.isalnum())
    return f"pre-upgrade-{host}-{stamp}Z"


def restore_point_moment(name: str) -> datetime | None:
    """Given a restore point's name, returns the moment restore_point_name() wrote into it (UTC), or None for a
    name of another making."""
    match = re.fullmatch(r"pre-upgrade-.+-(\d{8}T\d{6})Z", name)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC) if match else None


def make_restore_point_command(name: str) -> str:
    """Given a restore point's name (letters, digits, dashes), returns the line that names the present moment of the
    host's PostgreSQL so (`restore.py --data restore_point=NAME` goes back to it)."""
    sql = f"SELECT pg_create_restore_point('{name}')"
    return f"runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -tA -c {shlex.quote(sql)}"


def make_newest_commit_query_command() -> str:
    """Returns the line (root, on a database host) that prints the time of the host's newest committed transaction
    (track_commit_timestamp, on where the vault archives; an empty line when none was committed since it was
    turned on)."""
    sql = "SELECT timestamp FROM pg_last_committed_xact()"
    return f"cd /tmp && runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -tA -c {shlex.quote(sql)}"


def make_files_watch_state_command(job: str = "files") -> str:
    """Returns the line (root, on a data host) that prints, as JSON, whether the files job's data paths are as its
    last successful run found them when it began ({"job", "baseline": what took it, "unchanged"})."""
    return f"phoenix-backup watch-state {shlex.quote(job)}"


def make_barman_keep_command(server: str, backup: str = "latest") -> str:
    """Given an archived host and a base backup id (latest: the newest), returns the line (root, on the vault) that
    keeps that base backup and the WAL that makes it consistent whatever the retention window says, and prints
    which backup it kept."""
    return (
        f"cd /tmp && {barman('keep', '--target', 'full', server, backup)}"
        f" && {barman('list-backups', '--minimal', server)} | head -1"
    )


BACKGROUND_RESTORE_UNIT = "phoenix-restore-data"  # restore.py's data restore, while the app's release installs
BACKGROUND_RESTORE_LOG = "/var/lib/phoenix/restore/background.log"


def make_background_restore_command(line: str, log: str = BACKGROUND_RESTORE_LOG) -> str:
    """Given the line restoring a host's data, returns the line that starts it in a transient systemd unit and
    returns at once. The unit stays, with its result, after the line ends (make_background_restore_wait_command
    reads it); one left by a killed restore.py is stopped first (a restore stopped by SIGTERM says where). What
    it prints goes to `log` (root only). The line itself goes into a root-only script beside the log: systemd 252
    warns about the `\\;` of a command line given to systemd-run at every daemon-reload while the unit exists."""
    unit = BACKGROUND_RESTORE_UNIT
    script = posixpath.join(posixpath.dirname(log), "background.sh")
    text = f"exec >> {shlex.quote(log)} 2>&1\n{line}\n"
    return (
        f"systemctl stop {unit} >/dev/null 2>&1; systemctl reset-failed {unit} >/dev/null 2>&1;"
        f" mkdir -p {shlex.quote(posixpath.dirname(log))} && install -m 0600 /dev/null {shlex.quote(log)}"
        f" && ({make_private_file_write_command(script, text)})"
        f" && systemd-run --quiet --unit={unit} --property=RemainAfterExit=yes --setenv=HOME=/root"
        f" /bin/sh {shlex.quote(script)}"
    )


def make_background_restore_wait_command(log: str = BACKGROUND_RESTORE_LOG) -> str:
    """Returns the line that waits until the background data restore has ended, prints what it printed, removes
    its unit, and fails unless it succeeded."""
    unit = BACKGROUND_RESTORE_UNIT
    show = "systemctl show --value -p"
    return (
        f"while case $({show} SubState {unit}) in running|start*) true;; *) false;; esac; do sleep 0.5; done;"
        f" cat {shlex.quote(log)} >&2; result=$({show} Result {unit}); state=$({show} ActiveState {unit});"
        f" systemctl stop {unit} >/dev/null 2>&1; systemctl reset-failed {unit} >/dev/null 2>&1;"
        f' [ "$result" = success ] && [ "$state" = active ] && exit 0;'
        f' echo "the data restore ({unit}) did not succeed: $result, $state" >&2; exit 1'
    )


def make_holding_backup_lock_command(
    line: str, wait_seconds: int, lock: str = BACKUP_LOCK, what: str = "restore.py's data restore"
) -> str:
    """Given a line restoring a host's data, returns the line that runs it holding the host's backup lock (the
    flock phoenix-backup's scheduled runs take, with the holder written in it as they write theirs): a backup
    timer firing meanwhile waits for the restore instead of saving a half-restored database as the newest run.
    A backup already running is waited for, at most wait_seconds. `what` names the holder in the lock file.
    Without the lock, no part of the line runs (it may be several commands) and it exits REFUSED_STATUS."""
    path = shlex.quote(lock)
    holder = f"{what}, pid $$, since $(date -u +%Y-%m-%dT%H:%M:%S+00:00)"
    held_by = f"$(cat {path})"
    return (
        f"{{ mkdir -p {shlex.quote(posixpath.dirname(lock))} && exec 9>>{path} && {{ flock -n 9"
        f' || {{ echo "waiting for the backup lock, held by {held_by} (at most {wait_seconds}s)" >&2;'
        f" flock -w {wait_seconds} 9; }}"
        f' || {{ echo "a backup still holds {lock} after {wait_seconds}s ({held_by}): nothing was restored" >&2;'
        f' exit {REFUSED_STATUS}; }}; }} && echo "{holder}" > {path}; }}'
        f' || {{ echo "could not take the backup lock {lock}: nothing was restored" >&2; exit {REFUSED_STATUS}; }};'
        f" {line}"
    )


def make_all_at_once_command(lines: Sequence[str]) -> str:
    """Given independent command lines, returns the line that runs them at the same time, waits for all of them,
    and fails when any of them failed."""
    if len(lines) == 1:
        return lines[0]
    started = "; ".join(f"( {line} ) & pid{number}=$!" for number, line in enumerate(lines))
    waited = "; ".join(f"wait $pid{number} || failed=1" for number in range(len(lines)))
    return f"failed=0; {started}; {waited}; exit $failed"


def make_service_restart_command(service: str) -> str:
    """Given a systemd unit, returns the line that enables it and restarts it (starts it when stopped)."""
    return f"systemctl enable --quiet {shlex.quote(service)} && systemctl restart {shlex.quote(service)}"


def make_postgres_settings_apply_command(service: str) -> str:
    """Given PostgreSQL's systemd unit, returns the line that applies its changed configuration files: a restart
    when PostgreSQL finds a setting in them it cannot apply without one (pg_file_settings reads the files at
    query time; an invalid value shows there too, and a restart then reports it), else a reload. PostgreSQL
    not answering is restarted."""
    cannot_apply = "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL"
    count = f"runuser -u postgres -- psql -X -tA -c {shlex.quote(cannot_apply)} 2>/dev/null"
    return f'if [ "$({count})" = 0 ]; then systemctl reload {service}; else systemctl restart {service}; fi'
