"""Point-in-time recovery from the vault's Barman archive: the plan (control machine, before any change)
and the one stream that carries the recovered data directory from the vault to the new database host.

restore.py uses it when the host is archived (postgres.archive) and Barman holds a base backup of it;
otherwise the logical dump (phoenix-backup restore-db) is restored. The vault runs `barman recover`
into a staging directory and writes it as a tar stream; the control machine pipes that stream into
the new host, which swaps it in as its data directory and lets PostgreSQL replay the WAL. The new
host receives data only: no credential for the vault. A drill's stand-in (phoenix/stand_in.py) takes
the same path into its own container, through a staging directory of its own, and the vault's
Barman is left pointing at the source host.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from phoenix import archive_plan, backup_plan, barman_catalogue
from phoenix.barman_catalogue import BARMAN_HOME, streaming_directory
from phoenix.commands import (
    BARMAN_CRON_NOW,
    REFUSED_STATUS,
    barman,
    make_holding_backup_lock_command,
    make_remote_shell_argv,
    restore_point_moment,
)
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment

RECOVERY_LINE = re.compile(
    r"(recovery stopping (?:before|after|at) [^,]*, time (?P<stop>[^\n]+))"
    r"|(last completed transaction was at log time (?P<last>[^\n]+))"
)


@dataclass(frozen=True)
class Plan:
    """What one archived host's restore recovers: a base backup, replayed to a target (empty: the newest point)."""

    server: str
    backup_id: str
    backup_end: datetime
    target_time: datetime | None = None
    restore_point: str = ""

    def target(self) -> str:
        """The target as the report names it."""
        if self.restore_point:
            return f"restore point {self.restore_point!r}"
        if self.target_time is not None:
            return f"{self.target_time.isoformat(sep=' ')}"
        return "the newest point the archive holds"


def choose(
    server: str,
    backups: list[dict],
    window_days: int,
    at: datetime | None = None,
    restore_point: str = "",
    now: datetime | None = None,
) -> Plan | None:
    """Given Barman's base backups of a host (`barman -f json list-backups`, with barman_catalogue's
    `on_current_history`), returns the Plan, or None when Barman holds no finished base backup (the dump is
    restored then); raises PhoenixError, in one line, for a target outside the archive's window, or when every
    base backup lies on a history a point-in-time recovery has left."""
    done = sorted(
        (backup for backup in backups if backup.get("status") == "DONE"),
        key=lambda backup: int(backup["end_time_timestamp"]),
    )
    if not done:
        return None
    if at is not None and restore_point:
        raise PhoenixError("--data at and --data restore_point: give one target, not both")
    usable = [backup for backup in done if backup.get("on_current_history", True)]
    if not usable:
        raise PhoenixError(
            f"{server}: every base backup in the vault's archive was taken on a timeline a point-in-time recovery"
            f" has left since (the newest: {done[-1]['backup_id']}); none can recover {server}'s current history."
            f" Take one on the vault (barman backup {server}), then run again"
        )
    if restore_point:
        return _to_restore_point(server, usable, restore_point)
    if at is None:
        newest = usable[-1]
        return Plan(server, newest["backup_id"], _end(newest))
    before = [backup for backup in usable if _end(backup) <= at]
    if not before:
        oldest = _end(usable[0])
        now = now or datetime.now(UTC)
        raise PhoenixError(
            f"--data at={at.isoformat(sep=' ')}: outside {server}'s point-in-time window: the archive reaches back"
            f" to {oldest:%Y-%m-%d %H:%M:%S} UTC (its oldest base backup; window {window_days} days), nothing earlier"
        )
    return Plan(server, before[-1]["backup_id"], _end(before[-1]), target_time=at)


def _to_restore_point(server: str, usable: list[dict], restore_point: str) -> Plan:
    """The recovery to a named restore point starts from the newest base backup that ended before the point was
    made (upgrade.py's names say when: restore_point_moment), else from the oldest one: recovery replays forward
    only, so a base backup taken after the point never reaches it."""
    made = restore_point_moment(restore_point)
    if made is None:
        chosen = usable[0]
    else:
        before = [backup for backup in usable if _end(backup) <= made]
        if not before:
            raise PhoenixError(
                f"--data restore_point={restore_point}: made at {made:%Y-%m-%d %H:%M:%S} UTC, before {server}'s"
                f" oldest base backup in the vault's archive ({_end(usable[0]):%Y-%m-%d %H:%M:%S} UTC): it is"
                " outside the point-in-time window"
            )
        chosen = before[-1]
    return Plan(server, chosen["backup_id"], _end(chosen), restore_point=restore_point)


def _end(backup: dict) -> datetime:
    return datetime.fromtimestamp(int(backup["end_time_timestamp"]), UTC)


def staging_directory(server: str, stand_in_container: str = "") -> str:
    """Given an archived host (and the container of a drill's stand-in of it), returns the directory on the vault
    that `barman recover` writes its data into: a drill never shares a real restore's."""
    return f"{BARMAN_HOME}/recover/{stand_in_container or server}"


def held_wal_directory(staging: str) -> str:
    """Given a recovery's directory on the vault, returns where the streamed WAL waits while Barman recovers."""
    return f"{staging}.streamed"


def hold_streamed_wal_command(server: str, held: str) -> str:
    """Returns the shell loop (root, on the vault) that copies the WAL segments Barman streamed from `server` but has
    not archived yet, the one being streamed (.partial) too, into the directory `held`, before `barman recover`
    reads the archive's catalogue: a segment `barman cron` archives meanwhile is then in the one or the other.
    Copied after the recovery, such a segment was in neither, a gap in the WAL; when it is the first segment of a
    new timeline, PostgreSQL reads the parent timeline's segment of that number instead (it tries each timeline of
    the history) and replays the history a point-in-time recovery had left. A segment closed (renamed) while it is
    copied is copied again, by its new name."""
    streaming = streaming_directory(server)
    failed = f"phoenix: could not copy the WAL streamed from {server} into {held}"
    return (
        f"{{ rm -rf {held} && install -d -m 0700 {held} && for try in 1 2 3 4 5; do copied=yes;"
        f' for segment in {streaming}/0*; do [ -e "$segment" ] || continue;'
        f' cp "$segment" "{held}/$(basename "$segment" .partial)" 2>/dev/null || copied=no; done;'
        f" [ $copied = no ] || break; done && [ $copied = yes ] || {{ echo {shlex.quote(failed)} >&2; false; }}; }}"
    )


def add_held_wal_command(held: str, staging: str) -> str:
    """Returns the shell loop (root, on the vault) that moves the WAL hold_streamed_wal_command() kept in `held`
    into the recovered data directory `staging`'s pg_wal: PostgreSQL reads it after the archive's, so the seconds
    before the disaster come back (Barman archives a finished segment only once the next one has begun)."""
    return (
        f'for wal in {held}/0*; do [ -e "$wal" ] || continue; into={staging}/pg_wal/$(basename "$wal");'
        f' [ -e "$into" ] || mv "$wal" "$into"; done; rm -rf {held}'
    )


def promote_at_the_end_command(staging: str) -> str:
    """Returns the shell line (root, on the vault) that makes the recovered data directory `staging`, recovered
    without a target, run an archive recovery to the end of the WAL in pg_wal and promote onto a new timeline
    (unless Barman set a recovery up): without it PostgreSQL runs only crash recovery on the base backup's
    timeline, writes where the old server's stream was, and names no newest transaction."""
    return (
        f"{{ [ -e {staging}/recovery.signal ] || {{ touch {staging}/recovery.signal"
        f" && echo \"restore_command = 'false'\" >> {staging}/postgresql.auto.conf; }}; }}"
    )


# the stream passes through the control machine (two SSH links, or two nsenters into sandbox containers): zstd at
# its fastest level shrinks it several times for less CPU than it saves; a vault without zstd yet sends plain tar,
# which the host's `zstd -dcf` passes through
COMPRESS = "if command -v zstd >/dev/null; then zstd -q -1 -T0 -c; else cat; fi"
DECOMPRESS = "zstd -q -dcf"


def delete_in_background_command(path: str) -> str:
    """Returns the shell line that renames `path` aside and deletes it in the background: the restore goes on
    without waiting for a gigabyte to be unlinked (the session ends when the shell exits, not when the rm does)."""
    aside = f"{path}.deleting.$$"
    return f"mv {path} {aside} && (rm -rf {aside} </dev/null >/dev/null 2>&1 &)"


def recover_stream_command(plan: Plan, staging: str, then_stop_stream: bool = False) -> str:
    """Returns the shell line (root, on the vault) that recovers `plan` into the directory `staging` and writes it
    to stdout as one zstd-compressed tar stream, Barman's messages to stderr. With `then_stop_stream` (a restore of
    the server itself, never a drill's), the server's WAL stream is stopped in the background once the stream is
    sent: reset_stream_command() needs it stopped."""
    # the newest timeline: after an earlier restore the server writes on a later one than its base backup's
    target = ["--target-tli", "latest"]
    if plan.target_time is not None:
        target += ["--target-time", plan.target_time.isoformat(sep=" "), "--target-action", "promote"]
    elif plan.restore_point:
        target += ["--target-name", plan.restore_point, "--target-action", "promote"]
    # Barman configures a target's recovery itself (and may do so for a later timeline): left as it is
    newest = "" if plan.target_time is not None or plan.restore_point else f" && {promote_at_the_end_command(staging)}"
    held = held_wal_directory(staging)
    return (
        # the parent is Barman's too: the runbook's by-hand `barman recover` makes its directory there
        f"set -o pipefail; cd /tmp && rm -rf {staging} && install -d -o barman -g barman -m 0700"
        f" {BARMAN_HOME}/recover {staging} && {barman('-q', 'archive-wal', plan.server)} >&2"
        f" && {hold_streamed_wal_command(plan.server, held)}"
        f" && {barman('recover', *target, plan.server, plan.backup_id, staging)} >&2"
        f" && {add_held_wal_command(held, staging)}{newest}"
        f" && tar -C {staging} -cf - . | {{ {COMPRESS}; }} && {delete_in_background_command(staging)}"
        + (f" && ({stop_stream_command(plan.server)} </dev/null &)" if then_stop_stream else "")
    )


def data_directory(version: int) -> str:
    """Given PostgreSQL's major version, returns the data directory of Debian's cluster (main)."""
    return f"/var/lib/postgresql/{version}/main"


def service_name(version: int) -> str:
    """Given PostgreSQL's major version, returns the systemd unit of Debian's cluster (main)."""
    return f"postgresql@{version}-main"


def log_file(version: int) -> str:
    """Given PostgreSQL's major version, returns the log file of Debian's cluster (main)."""
    return f"/var/log/postgresql/postgresql-{version}-main.log"


# PostgreSQL 13+ refuses to promote when the WAL ends before a target time: for a moment after the archive's
# newest transaction, the end of the WAL is that moment's state
NOT_REACHED = "recovery ended before configured recovery target was reached"
# what the swap-in prints when it recovered to the end of the WAL instead
TO_THE_END = "phoenix: no transaction in the archive after the target: recovered to the end of the archive"


def swap_in_command(
    version: int, databases: list[str], force: bool, target_time: bool = False, reserve_slot: bool = False
) -> str:
    """Returns the shell line (root, on the new database host) that refuses to replace a database holding
    tables unless `force`, then swaps the (zstd-compressed) tar stream on stdin in as PostgreSQL's data directory,
    starts it, waits until recovery has ended, and prints PostgreSQL's own lines naming where recovery stopped.
    With `target_time`, a recovery whose WAL ends before the target (no transaction after it) is started
    again without the target, to the end of the WAL, and TO_THE_END is printed. With `reserve_slot` (the server
    itself, archived again from now on; never a drill's copy), the vault's replication slot is created as soon
    as recovery has ended: a base backup holds no slot, and without one the WAL written before the vault's
    stream reconnects (seconds; longer if the vault is unreachable) could be recycled, a gap in the archive."""
    data = data_directory(version)
    service = service_name(version)
    log = log_file(version)
    psql = "runuser -u postgres -- psql -X -tA"
    checks = ""
    if not force:
        tables = (
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
        for database in databases:
            checks += (
                f"n=$({psql} -d {shlex.quote(database)} -c {shlex.quote(tables)} 2>/dev/null || echo 0);"
                f' [ "${{n:-0}}" = 0 ] || {{ echo "database {database} holds data ($n tables): not restoring the'
                ' archive over it; to replace it, run again with --data force_restore=yes" >&2;'
                f" exit {REFUSED_STATUS}; }};"
            )
    incoming = f"{data}.restoring"
    recovered = f'[ "$({psql} -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]'
    # once, with a target time: the WAL ended before it, so recover again without it, to the end of the WAL
    to_the_end = (
        f"to_the_end() {{ [ $again = no ] && again=yes && tail -n +$((mark + 1)) {log} | grep -qF '{NOT_REACHED}'"
        f" && sed -i '/^recovery_target_time *=/d' {data}/postgresql.auto.conf && echo '{TO_THE_END}'"
        f" && systemctl start {service}; }}; again=no;"
        if target_time
        else "to_the_end() { false; };"
    )
    # PostgreSQL did not come out of recovery: its server's reasons (FATAL, PANIC; not those it gave clients while
    # starting) and last lines are shown, the previous data directory goes back, the failed one is kept
    back = (
        f"back() {{ {{ tail -n +$((mark + 1)) {log} | grep -E '\\] (FATAL|PANIC): ' | tail -3;"
        f" tail -n +$((mark + 1)) {log} | tail -3; }} >&2; systemctl stop {service} || true;"
        f" rm -rf {data}.failed-restore; mv {data} {data}.failed-restore; mv {data}.before-restore {data};"
        f" systemctl start {service} || true; echo 'PostgreSQL did not finish the recovery; the previous data are"
        f" back, the recovered copy is kept in {data}.failed-restore' >&2; exit 1; }};"
    )
    return (
        f"set -e -o pipefail; cd /tmp; {checks} rm -rf {incoming};"
        f" install -d -o postgres -g postgres -m 0700 {incoming};"
        # all received before anything is replaced
        f" {DECOMPRESS} | tar -x -C {incoming}; chown -R postgres:postgres {incoming};"
        f" mark=$(wc -l < {log} 2>/dev/null || echo 0); {back} {to_the_end}"
        f" systemctl stop {service}; rm -rf {data}.before-restore; mv {data} {data}.before-restore;"
        # `systemctl start` returns once Debian's pg_ctlcluster has seen three connections in a row half a second
        # apart, 1.5-2 s after PostgreSQL accepts them: it runs in the background, its failure acted on when it comes
        f" mv {incoming} {data}; systemctl start {service} >/dev/null 2>&1 & starting=$!;"
        # polled five times a second, for an hour at most: recovery of a day's WAL can take minutes, a quiet one
        # ends within a second of the start
        f' for i in $(seq 18000); do {recovered} && break; if [ -n "$starting" ]; then'
        f" kill -0 $starting 2>/dev/null || {{ wait $starting || to_the_end || back; starting=; }};"
        f" else systemctl is-active --quiet {service} || to_the_end || back; fi; sleep 0.2; done; {recovered} || back;"
        f"{reserve_slot_command(psql) if reserve_slot else ''}"
        f' tail -n +$((mark + 1)) {log} | grep -E "recovery stopping|last completed transaction" || true;'
        f" {delete_in_background_command(data + '.before-restore')}"
    )


def reserve_slot_command(psql: str) -> str:
    """Returns the shell line (root) that creates the vault's replication slot, reserving WAL from now, unless
    it exists (Barman's receive-wal, `create_slot = auto`, uses it as it finds it)."""
    slot = archive_plan.SLOT_NAME
    query = (
        f"SELECT pg_create_physical_replication_slot('{slot}', true)"
        f" WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}')"
    )
    failed = "phoenix: the replication slot could not be reserved; Barman's receive-wal creates it when it connects"
    return f" {psql} -c {shlex.quote(query)} >/dev/null || echo {shlex.quote(failed)} >&2;"


def stop_stream_command(server: str) -> str:
    """Returns the shell line (root, on the vault) that stops Barman's WAL stream of `server` as `barman receive-wal
    --stop` does, with SIGINT to its receive-wal process (which ends its pg_receivewal), but watching it go every
    50 ms: Barman's own stop looks once a second, so it takes at least a second. A stream still there after 10 s is
    left to Barman's stop. Output discarded."""
    stream = shlex.quote(f"[r]eceive-wal {server}$")  # the bracket: pgrep never finds the shell running this line
    return (
        f"{{ pkill -INT -f {stream}; for i in $(seq 200); do pgrep -f {stream} >/dev/null || break; sleep 0.05; done;"
        f" ! pgrep -f {stream} >/dev/null || {barman('receive-wal', '--stop', server)}; }} >/dev/null 2>&1"
    )


def start_stream_command(server: str) -> str:
    """Returns the shell line (root, on the vault) that starts Barman's WAL stream of `server` now, in a transient
    systemd service of the barman user, as `barman cron` would start it within the minute (a cron run first checks
    every server, which costs about half a second before the stream starts)."""
    description = shlex.quote(f"Barman WAL stream of {server}, restarted by restore.py")
    return (
        f"systemd-run --quiet --collect --uid=barman --gid=barman --description={description}"
        f" barman -q receive-wal {shlex.quote(server)}"
    )


def reset_stream_command(server: str) -> str:
    """Returns the shell line (root, on the vault) that points Barman's WAL stream at the restored server: the
    old server's stream stopped, its position reset to the new server's (`receive-wal --reset`), restarted."""
    # exits 1 when no reset succeeded (Barman's last message on stderr), after a cron run all the same; a stream
    # systemd-run cannot start is left to a cron run too
    return (
        f"cd /tmp; {stop_stream_command(server)}; reset=no; for try in $(seq 15); do"
        f" out=$({barman('receive-wal', '--reset', server)} 2>&1) && {{ reset=yes; break; }};"
        f" {stop_stream_command(server)}; sleep 2; done;"  # a stream the cron restarted meanwhile
        f" if [ $reset = yes ]; then {start_stream_command(server)} || {BARMAN_CRON_NOW}; else {BARMAN_CRON_NOW};"
        ' echo "$out" | tail -3 >&2; exit 1; fi'
    )


STREAM_WAIT_SECONDS = 60  # how long restore.py waits for the vault's WAL stream to reach the restored server


def stream_started_command(wait_seconds: int = STREAM_WAIT_SECONDS) -> str:
    """Returns the shell line (root, on the restored server) that waits until the vault's WAL stream streams from
    it: pg_receivewal writes the new timeline's history file before it streams, so a recovery started after this
    one finds the restored server's timeline. Exits 1, saying so, after wait_seconds."""
    query = (
        "SELECT 1 FROM pg_stat_replication"
        " WHERE application_name = 'barman_receive_wal' AND state = 'streaming' LIMIT 1"
    )
    return (
        f"for try in $(seq {wait_seconds * 10}); do"  # ten times a second: it streams within a second
        f' [ "$(runuser -u postgres -- psql -X -tA -c {shlex.quote(query)} 2>/dev/null)" = 1 ] && exit 0; sleep 0.1;'
        f" done; echo 'its stream had not started {wait_seconds}s after the reset' >&2; exit 1"
    )


def on_host(environment: Environment, remote, name: str, line: str, with_stdin: bool = False) -> list[str]:
    """Returns the argv that runs shell line `line` as root on host `name` (over SSH, or nsenter into a sandbox
    container)."""
    ssh = environment.over_ssh
    return make_remote_shell_argv(remote(environment, name, with_stdin=with_stdin), line, ssh)


def recovered_to(output: str) -> str:
    """Given the swap-in's output (PostgreSQL's log lines), returns the time of the newest transaction restored
    ('' when PostgreSQL named none)."""
    found = ""
    for match in RECOVERY_LINE.finditer(output):
        found = (match.group("stop") or match.group("last") or "").strip()
    return found


def list_backups(environment: Environment, server: str, remote) -> list[dict]:
    """Returns Barman's base backups of `server` on the environment's vault, as `barman -f json list-backups`
    gives them, each with `on_current_history` (barman_catalogue.parse); raises PhoenixError when the vault
    cannot say."""
    vault = backup_plan.vault_host(environment.hosts)
    command = barman_catalogue.catalogue_command(server)
    result = subprocess.run(on_host(environment, remote, vault, command), capture_output=True, text=True)
    return barman_catalogue.parse(server, vault, result.stdout)


@dataclass
class VaultSide:
    """The vault's side of a recovery, started before the new host is ready to receive it: `barman recover` runs
    at once, and its tar stream waits in the pipe until start_stream() connects the host."""

    vault: str
    server: str
    source: subprocess.Popen
    vault_errors: IO[bytes]  # a file, not a pipe: nothing can block on Barman's messages


@dataclass
class Streaming:
    """A recovery streaming from the vault into the new host in the background, and the files that take what the
    host prints."""

    vault_side: VaultSide
    sink: subprocess.Popen
    host_output: IO[bytes]
    host_errors: IO[bytes]


def start_vault_side(
    environment: Environment, server: str, plan: Plan, remote, stand_in_container: str = ""
) -> VaultSide:
    """Starts `barman recover` of `plan` on the vault (into the staging directory of `server`, or of a drill's
    stand-in of it); returns at once."""
    vault = backup_plan.vault_host(environment.hosts)
    staging = staging_directory(server, stand_in_container)
    vault_errors = tempfile.TemporaryFile()
    source = subprocess.Popen(
        on_host(environment, remote, vault, recover_stream_command(plan, staging, not stand_in_container)),
        stdout=subprocess.PIPE,
        stderr=vault_errors,
    )
    return VaultSide(vault, server, source, vault_errors)


def start_stream(
    environment: Environment,
    vault_side: VaultSide,
    plan: Plan,
    version: int,
    databases: list[str],
    force: bool,
    remote,
    lock_wait: int,
    stand_in_container: str = "",
) -> Streaming:
    """Connects the vault's side of a recovery to the new host (`stand_in_container`: a drill's stand-in of it,
    never the environment's host), which swaps it in holding its backup lock (a dump job firing meanwhile waits;
    one running is waited for, at most lock_wait seconds); returns at once: finish_stream() waits for it."""
    host_output, host_errors = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    swap_in = swap_in_command(version, databases, force, plan.target_time is not None, not stand_in_container)
    holding_lock = make_holding_backup_lock_command(swap_in, lock_wait, what="restore.py's archive restore")
    source = vault_side.source
    sink = subprocess.Popen(
        receiving_argv(environment, remote, vault_side.server, holding_lock, stand_in_container),
        stdin=source.stdout,
        stdout=host_output,
        stderr=host_errors,
    )
    source.stdout.close()  # the host's end only: were it to stop reading, the vault's side ends instead of blocking
    return Streaming(vault_side, sink, host_output, host_errors)


def finish_stream(streaming: Streaming) -> str:
    """Waits for a recovery start_stream() started; returns the host's output; raises PhoenixError naming the side
    that failed."""
    vault_side = streaming.vault_side
    sink_status, source_status = streaming.sink.wait(), vault_side.source.wait()
    vault_errors, host_output, host_errors = (
        _read_and_close(file) for file in (vault_side.vault_errors, streaming.host_output, streaming.host_errors)
    )
    vault, server = vault_side.vault, vault_side.server
    if sink_status == REFUSED_STATUS:  # the host refused (data, or a backup's lock): that cut the vault's stream
        raise PhoenixError(host_errors[-800:])
    if source_status != 0:
        raise PhoenixError(
            f"{vault}: barman recover of {server} failed ({server}'s data directory was left as it was):"
            f" {vault_errors[-800:]}"
        )
    if sink_status != 0:
        raise PhoenixError(f"{server}: the recovered data were not swapped in: {host_errors[-800:]}")
    return host_output


def _read_and_close(file: IO[bytes]) -> str:
    file.seek(0)
    text = file.read().decode(errors="replace").strip()
    file.close()
    return text


def receiving_argv(environment: Environment, remote, server: str, line: str, stand_in_container: str = "") -> list[str]:
    """Returns the argv that runs shell line `line`, reading stdin, on the host receiving `server`'s recovered data:
    the environment's host of that name, or a drill's stand-in container on this machine."""
    if stand_in_container:
        return make_remote_shell_argv(["docker", "exec", "-i", stand_in_container], line, ssh=False)
    return on_host(environment, remote, server, line, with_stdin=True)


def barman_files(environment: Environment, secrets) -> list[tuple[str, str, str, str]]:
    """Returns the vault's Barman files that name the archived hosts' addresses, as deploy.py renders them from
    the hosts' addresses now: (path, content, owner, mode)."""
    from phoenix.inventory import archive_servers, host_addresses

    vault = backup_plan.vault_host(environment.hosts)
    servers = archive_servers(environment, host_addresses(environment))
    settings = environment.hosts[vault]["vault"]
    files = [
        (
            f"{archive_plan.BARMAN_CONFIG_DIRECTORY}/{server['name']}.conf",
            archive_plan.server_config(server["name"], server["address"], settings, server["version"]),
            "root",
            "0644",
        )
        for server in servers
    ]
    return files + [(f"{BARMAN_HOME}/.pgpass", archive_plan.pgpass(servers, secrets), archive_plan.BARMAN_USER, "0600")]


def replace_file_command(path: str, owner: str, mode: str) -> str:
    """Returns the shell line (root) that makes `path` hold its stdin, owned by `owner` with `mode`, unless it
    already does; prints `changed` when it replaced it."""
    return (
        f"set -e; new=$(mktemp); cat > $new; if cmp -s $new {shlex.quote(path)}; then rm -f $new; else"
        f" install -o {owner} -g {owner} -m {mode} $new {shlex.quote(path)}; rm -f $new; echo changed; fi"
    )


@dataclass(frozen=True)
class Following:
    """What pointing the vault's Barman at a restored server did: whether a file changed (Barman had another
    address), and, when its WAL stream could not be reset to the restored server, Barman's last words."""

    repointed: bool
    stream_error: str = ""


def follow(environment: Environment, server: str, secrets, remote) -> Following:
    """Points the vault's Barman at restored host `server` as it is now: its files rewritten from the hosts'
    addresses (a replacement server may have a new one; deploy.py would write the same), then its WAL stream
    reset to the restored server, and waited for until it streams. Raises PhoenixError when a file cannot be written;
    a stream that cannot be reset, or does not start, is returned, not raised: the data are back, and the restore
    report names it."""
    vault = backup_plan.vault_host(environment.hosts)
    changed = False
    for path, content, owner, mode in barman_files(environment, secrets):
        result = subprocess.run(
            on_host(environment, remote, vault, replace_file_command(path, owner, mode), with_stdin=True),
            input=content,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise PhoenixError(f"{vault}: could not update {path} for {server}'s new address: {result.stderr[-400:]}")
        changed = changed or "changed" in result.stdout
    outcome = subprocess.run(
        on_host(environment, remote, vault, reset_stream_command(server)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if outcome.returncode == 0:  # restore.py ends once the restored server is archived again
        outcome = subprocess.run(
            on_host(environment, remote, server, stream_started_command()),
            capture_output=True,
            text=True,
            timeout=STREAM_WAIT_SECONDS + 60,
        )
    error = "" if outcome.returncode == 0 else (outcome.stderr.strip().splitlines() or ["no message"])[-1]
    return Following(changed, error)


def prepare(host_name: str, plan: Plan, data, streams: dict) -> None:
    """restore.py's first operation when the archive is restored (runs on the control machine): starts `barman
    recover` of `plan` on the vault, which runs while the new host is provisioned; keeps it in streams[host_name]."""
    from phoenix.inventory import environment_of
    from phoenix.vault_client import remote_command

    environment = environment_of(data.phoenix_inventory)  # a stand-in's: the source's, whose vault holds the archive
    streams[host_name] = start_vault_side(environment, host_name, plan, remote_command, data.stand_in_container)


def start(host_name: str, plan: Plan, data, force: bool, streams: dict) -> None:
    """restore.py's operation once PostgreSQL is installed: connects the recovery prepare() started to host
    `host_name` and keeps it in streams[host_name]; the deploy goes on installing what does not touch the data
    (the app's packages and release, the TLS certificate) while it runs.

    A drill's stand-in receives the data in its own container."""
    from phoenix.inventory import environment_of
    from phoenix.vault_client import remote_command

    environment = environment_of(data.phoenix_inventory)
    databases = backup_plan.databases_served(host_name, environment.hosts)
    version, lock_wait = data.postgres["version"], data.backup["lock_wait_seconds"]
    container = data.stand_in_container
    vault_side = streams.pop(host_name)
    streams[host_name] = start_stream(
        environment, vault_side, plan, version, databases, force, remote_command, lock_wait, container
    )


def finish(host_name: str, plan: Plan, data, streams: dict, results: dict) -> None:
    """restore.py's operation: waits for the recovery start() began and records {"target", "backup",
    "newest_transaction", ...} in results[host_name]; raises PhoenixError when the recovery failed. Then starts
    pointing the vault's Barman at the restored server, in the background while the app starts: followed() waits
    for it.

    A drill's stand-in is never followed: the vault's Barman keeps following the source host (repointing it would
    steal production's WAL stream)."""
    from phoenix.inventory import environment_of
    from phoenix.vault_client import remote_command

    output = finish_stream(streams.pop(host_name))
    target = plan.target()
    if TO_THE_END in output:
        target += " (no transaction in the archive after it: recovered to the archive's end)"
    results[host_name] = {
        "target": target,
        "backup": plan.backup_id,
        "backup_end": plan.backup_end.isoformat(),
        "newest_transaction": recovered_to(output),
        "barman_repointed": False,
        "stream_error": "",
    }
    if not data.stand_in_container:
        environment = environment_of(data.phoenix_inventory)
        pool = ThreadPoolExecutor(max_workers=1)  # a greenlet under pyinfra, which patches threading with gevent
        streams[host_name] = pool.submit(follow, environment, host_name, data.secrets, remote_command)
        pool.shutdown(wait=False)  # its one task runs on; followed() waits for it


def followed(host_name: str, streams: dict, results: dict) -> None:
    """restore.py's operation before its report: waits until the vault's Barman follows the restored server (as
    finish() began it) and records how in results[host_name]; raises PhoenixError when a Barman file could not be
    written."""
    following_future = streams.pop(host_name, None)
    if following_future is None:  # a drill's stand-in, or no archive restored
        return
    following = following_future.result()
    results[host_name].update(barman_repointed=following.repointed, stream_error=following.stream_error)
